from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

# For trying the chat on your own machine only: these passwords are in the README.
DEMO_USERS = {"alice": "alice-chats", "bob": "bob-chats"}


class Command(BaseCommand):
    help = "Create the demo users alice and bob, or reset their passwords if changed; safe to run again."

    def handle(self, *args, **options):
        for username, password in DEMO_USERS.items():
            user, created = get_user_model().objects.get_or_create(username=username)
            # A new hash, even of the same password, would end every session of the user: keep the one that matches.
            if not user.check_password(password):
                user.set_password(password)
                user.save()
            self.stdout.write(f"{'Created' if created else 'Kept'} {username}, password {password}")
