"""Projects get a slug (rater_create --project kim-project), filled from the name for existing rows."""
from django.db import migrations, models
from django.utils.text import slugify


def fill_slugs(apps, schema_editor):
    LabelingProject = apps.get_model("labeling", "LabelingProject")
    taken = set()
    for pk, name in LabelingProject.objects.order_by("pk").values_list("pk", "name"):
        base = slugify(name)[:190] or "project"
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.add(slug)
        LabelingProject.objects.filter(pk=pk).update(slug=slug)


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0004_annotation_project_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="labelingproject",
            name="slug",
            field=models.SlugField(max_length=200, null=True, blank=True, db_index=False),
        ),
        migrations.RunPython(fill_slugs, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="labelingproject",
            name="slug",
            field=models.SlugField(blank=True, help_text="Short name for commands (rater_create --project); blank: "
                                   "from the name.", max_length=200, unique=True),
        ),
    ]
