"""A ticket's conversation: comments become rows of their own (TicketComment), appended with
their author and time; the one "comments" field each save overwrote becomes the first comment
of its ticket, by whoever saved it last."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def comments_to_rows(apps, schema_editor):
    Ticket = apps.get_model("y_helpdesk", "Ticket")
    TicketComment = apps.get_model("y_helpdesk", "TicketComment")
    TicketComment.objects.bulk_create(
        TicketComment(ticket_id=pk, author_id=author_id, text=text, at=at)
        for pk, text, author_id, at in Ticket.objects.exclude(comments="")
        .values_list("pk", "comments", "modified_by_id", "modified_at")
        .iterator()
    )


def rows_to_comments(apps, schema_editor):
    Ticket = apps.get_model("y_helpdesk", "Ticket")
    TicketComment = apps.get_model("y_helpdesk", "TicketComment")
    for comment in TicketComment.objects.order_by("ticket_id", "at", "id").iterator():
        Ticket.objects.filter(pk=comment.ticket_id).update(comments=comment.text)


class Migration(migrations.Migration):

    dependencies = [
        ("y_helpdesk", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="TicketComment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("text", models.TextField()),
                ("at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "author",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "ticket",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="comments",
                        to="y_helpdesk.ticket",
                    ),
                ),
            ],
            options={
                "ordering": ["ticket", "at", "id"],
                "indexes": [
                    models.Index(fields=["ticket", "at"], name="y_helpdesk__ticket__0ce7ec_idx")
                ],
            },
        ),
        migrations.RunPython(comments_to_rows, rows_to_comments),
        migrations.RemoveField(model_name="ticket", name="comments"),
    ]
