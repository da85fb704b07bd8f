"""Accounts, for staff: who has which role, which doctor a clinician acts as, and who is active."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, permissions, serializers

from hospital.access import Capability, with_roles
from hospital.audit import AuditedView
from hospital.filters import QueryFilterBackend, StrictOrderingFilter, StrictSearchFilter, UserFilter
from hospital.models import AuditResource, User
from hospital.permissions import requires
from hospital.serializers import UserSerializer, UserUpdateSerializer

STAFF_ONLY = [permissions.IsAuthenticated, requires(Capability.MANAGE_ACCOUNTS, "Staff")]


class UserAuditMixin(AuditedView):
    audit_resource = AuditResource.USER

    def audit_ids(self, response):
        return self.response_ids(response), []


class UserListView(UserAuditMixin, generics.ListAPIView):
    """Every account with its roles and linked doctor, by id; `?role=` and `?search=` (username, email)."""

    serializer_class = UserSerializer
    permission_classes = STAFF_ONLY
    filterset_class = UserFilter
    audit_in_read = True
    filter_backends = [QueryFilterBackend, StrictSearchFilter, StrictOrderingFilter]
    search_fields = ["username", "email"]
    ordering_fields = ["id", "username", "date_joined"]

    def get_queryset(self):
        return with_roles(User.objects.all())


@extend_schema_view(patch=extend_schema(request=UserUpdateSerializer, responses={200: UserSerializer}))
class UserDetailView(UserAuditMixin, generics.RetrieveUpdateAPIView):
    """One account. PATCH any of `roles` (the whole list), `doctor` (id or null) and `is_active`; a clinician
    must be linked to a doctor, and a doctor to at most one account. Effective on the account's next request."""

    permission_classes = STAFF_ONLY
    http_method_names = ["get", "patch", "head", "options"]
    audit_in_read = True

    def get_queryset(self):
        return with_roles(User.objects.all())

    def get_serializer_class(self):
        return UserUpdateSerializer if self.request.method == "PATCH" else UserSerializer

    def perform_update(self, serializer):
        if serializer.instance.pk == self.request.user.pk and serializer.validated_data.get("is_active") is False:
            raise serializers.ValidationError({"is_active": ["You cannot deactivate your own account."]})
        serializer.save()
