import uuid

from django.db import migrations, models


def give_everyone_a_uuid(apps, schema_editor):
    People = apps.get_model("peoples", "People")
    for person in People.objects.filter(uuid__isnull=True).only("pk"):
        People.objects.filter(pk=person.pk).update(uuid=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("peoples", "0001_initial")]

    operations = [
        migrations.AddField("people", "uuid", models.UUIDField(null=True, editable=False)),
        migrations.RunPython(give_everyone_a_uuid, migrations.RunPython.noop),
        migrations.AlterField(
            "people", "uuid", models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
        ),
    ]
