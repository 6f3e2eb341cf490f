from django.conf import settings
from django.db import migrations, models


def number_the_saved_messages(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    Message = apps.get_model("chat", "Message")
    for room in Room.objects.all():
        messages = list(Message.objects.filter(room=room).order_by("id"))
        for number, message in enumerate(messages, start=1):
            message.number = number
        Message.objects.bulk_update(messages, ["number"])
        Room.objects.filter(pk=room.pk).update(last_number=len(messages))


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("chat", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="room",
            name="last_number",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="message",
            name="number",
            field=models.PositiveBigIntegerField(null=True),
        ),
        migrations.RunPython(number_the_saved_messages, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="message",
            name="number",
            field=models.PositiveBigIntegerField(),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(fields=("room", "number"), name="chat_one_message_per_number"),
        ),
    ]
