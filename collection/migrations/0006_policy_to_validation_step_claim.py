# Validation's vocabulary leaves collection: a source's quarantine and personal-data settings now live in
# validation.SourcePolicy (its 0010 copies them first), and the batch's claim is a step's, not validation's.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("collection", "0005_batch_failures"),
        ("validation", "0010_sourcepolicy"),
    ]

    operations = [
        migrations.RemoveField(model_name="source", name="quarantine_on"),
        migrations.RemoveField(model_name="source", name="privacy_check"),
        migrations.RenameField(model_name="batch", old_name="validation_claim", new_name="step_claim"),
        migrations.AlterField(
            model_name="batch",
            name="step_claim",
            field=models.CharField(
                blank=True, default="", max_length=32,
                help_text="The live claim's id of the step working on the batch, if it names one."),
        ),
    ]
