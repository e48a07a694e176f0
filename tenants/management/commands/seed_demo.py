import json

from django.conf import settings

from tenants.management.base import OperatorCommand
from tenants.models import Client, Role
from tenants.services import client_create, generate_password, user_create

DEMO_CLIENTS = [
    {"name": "Lakeside Academy", "slug": "lakeside-academy", "products": ["schools", "marketing"]},
    {"name": "Harbor Coffee Co.", "slug": "harbor-coffee", "products": ["marketing", "concierge"]},
]
DEMO_STAFF = [
    ("super@demo.sagerock.test", Role.SUPER_ADMIN),
    ("admin@demo.sagerock.test", Role.ADMIN),
]


class Command(OperatorCommand):
    help = "Seed demo data once (two clients, a super_admin, an admin, a client_admin per client) and print the logins."

    def handle(self, *args, **options):
        logins_file = settings.BASE_DIR / ".local" / "demo-logins.json"
        if Client.objects.filter(slug=DEMO_CLIENTS[0]["slug"]).exists():
            logins = json.loads(logins_file.read_text()) if logins_file.exists() else []
        else:
            logins = self._seed()
            logins_file.parent.mkdir(parents=True, exist_ok=True)
            logins_file.write_text(json.dumps(logins, indent=2))
            logins_file.chmod(0o600)
        self.stdout.write("Demo logins (local demo data only):")
        for login in logins:
            self.stdout.write(f"  {login['role']:<13} {login['email']:<36} {login['password']}")

    def _seed(self) -> list[dict]:
        actor = self.operator()
        logins = []
        for email, role in DEMO_STAFF:
            password = generate_password()
            user_create(email=email, role=role, password=password, full_name=role.label, actor=actor)
            logins.append({"role": role.value, "email": email, "password": password})
        for spec in DEMO_CLIENTS:
            client = client_create(**spec, actor=actor)
            email = f"admin@{client.slug}.demo.sagerock.test"
            password = generate_password()
            user_create(email=email, role=Role.CLIENT_ADMIN, client=client, password=password,
                        full_name=f"{client.name} admin", actor=actor)
            logins.append({"role": Role.CLIENT_ADMIN.value, "email": email, "password": password})
        return logins
