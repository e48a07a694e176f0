from django.core.management.base import BaseCommand, CommandError

from tenants.rls import find_problems, format_problems


class Command(BaseCommand):
    help = "Check the live database for every Row Level Security requirement; exit 1 listing each problem."

    def handle(self, *args, **options):
        problems = find_problems()
        if problems:
            self.stderr.write(format_problems(problems))
            raise CommandError(f"{len(problems)} Row Level Security problem(s) found.")
        self.stdout.write(self.style.SUCCESS("Row Level Security: every tenant table is isolated."))
