# Validation's per-source settings move out of collection.Source into validation.SourcePolicy; each source's values
# are copied here before collection's 0006 drops its columns.

import django.db.models.deletion
from django.db import migrations, models

COPIED = ("quarantine_on", "privacy_check")


def copy_from_sources(apps, schema_editor):
    Source = apps.get_model("collection", "Source")
    SourcePolicy = apps.get_model("validation", "SourcePolicy")
    SourcePolicy.objects.bulk_create(
        [SourcePolicy(source_id=row["pk"], **{field: row[field] for field in COPIED})
         for row in Source.objects.values("pk", *COPIED).iterator()], batch_size=1000)


def copy_to_sources(apps, schema_editor):
    Source = apps.get_model("collection", "Source")
    SourcePolicy = apps.get_model("validation", "SourcePolicy")
    for policy in SourcePolicy.objects.iterator():
        Source.objects.filter(pk=policy.source_id).update(**{field: getattr(policy, field) for field in COPIED})


class Migration(migrations.Migration):

    dependencies = [
        ("collection", "0005_batch_failures"),
        ("validation", "0009_alert_validation_failed"),
    ]

    operations = [
        migrations.CreateModel(
            name="SourcePolicy",
            fields=[
                ("source", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                                related_name="policy", serialize=False, to="collection.source")),
                ("quarantine_on", models.CharField(
                    choices=[("fail", "Errors (a warning admits the batch and raises an alert)"),
                             ("warn", "Warnings and errors")],
                    default="fail",
                    help_text="Which findings quarantine a batch; the others admit it and raise an alert.",
                    max_length=10)),
                ("privacy_check", models.CharField(
                    choices=[("error", "Error (personal data quarantines the batch)"),
                             ("warn", "Warning (personal data is reported; the quarantine policy decides)"),
                             ("off", "Off (not checked; profiles keep raw values)")],
                    default="error",
                    help_text="Features that look like personal data (at least 5% email addresses, phone numbers, "
                              "card numbers, IBANs or IP addresses): an error, a warning, or off. When on, the "
                              "profiles of such a feature keep no raw value of it.",
                    max_length=10)),
            ],
            options={"verbose_name_plural": "source policies"},
        ),
        migrations.RunPython(copy_from_sources, copy_to_sources),
    ]
