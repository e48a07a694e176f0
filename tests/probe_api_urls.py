"""A deliberately injectable API view (test configuration only): it runs the
SQL it is given on the request's own connection, inside the caller's client
context, the way a SQL injection would."""

from django.db import DatabaseError, connections
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.context import current_alias


class InjectableView(APIView):
    @extend_schema(exclude=True)
    def post(self, request):
        rows = []
        try:
            with connections[current_alias()].cursor() as cursor:
                for statement in request.data.get("statements", []):
                    cursor.execute(statement)
                    if cursor.description:
                        rows = [list(map(str, row)) for row in cursor.fetchall()]
        except DatabaseError as error:
            # What the attacker learns from a refused statement.
            return Response({"alias": current_alias(), "error": str(error).splitlines()[0]}, status=400)
        return Response({"alias": current_alias(), "rows": rows})


urlpatterns = [path("injectable/", InjectableView.as_view())]
