"""Accounts and tokens: register, login, refresh, logout, me."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from hospital.audit import AuditedView
from hospital.models import AuditAction, AuditResource
from hospital.serializers import (
    LoginSerializer,
    MeSerializer,
    RefreshTokenSerializer,
    RegisterSerializer,
    TokenPairSerializer,
)
from hospital.services import end_session, rotate_refresh_token
from hospital.throttles import AnonymousRateThrottle, ClientScopedRateThrottle


class AccountAuditMixin(AuditedView):
    """Account events name the account they concern."""

    audit_resource = AuditResource.USER

    def audit_ids(self, response):
        if self.audit_actor_id is not None:
            return [self.audit_actor_id], []
        return super().audit_ids(response)


class RegisterView(AccountAuditMixin, generics.CreateAPIView):
    """Create an account. Throttled per client address."""

    serializer_class = RegisterSerializer
    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [AnonymousRateThrottle, ClientScopedRateThrottle]
    throttle_scope = "register"


class LoginView(AccountAuditMixin, generics.GenericAPIView):
    """Exchange a username and password for an access and a refresh token. Throttled per client address."""

    serializer_class = LoginSerializer
    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [AnonymousRateThrottle, ClientScopedRateThrottle]
    throttle_scope = "login"
    audit_action = AuditAction.LOGIN

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'

    @extend_schema(responses={200: TokenPairSerializer})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as error:
            raise InvalidToken(error.args[0]) from None
        self.audit_actor_id = serializer.user.pk
        return Response(serializer.validated_data)


class RefreshView(AccountAuditMixin, generics.GenericAPIView):
    """Exchange a refresh token for a new pair. The old one is then rejected; presented again, it ends the session."""

    serializer_class = RefreshTokenSerializer
    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    audit_action = AuditAction.REFRESH

    def get_authenticate_header(self, request):
        """A rejected token is a 401 with a challenge (DRF answers 403 for views without authenticators)."""
        return 'Bearer realm="api"'

    @extend_schema(responses={200: TokenPairSerializer})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refresh = rotate_refresh_token(serializer.validated_data["refresh"])
        self.audit_actor_id = refresh.payload["user_id"]
        return Response({"access": str(refresh.access_token), "refresh": str(refresh)})


class LogoutView(AccountAuditMixin, generics.GenericAPIView):
    """End the session of one of the caller's refresh tokens: it and its access tokens stop working at once."""

    serializer_class = RefreshTokenSerializer
    audit_action = AuditAction.LOGOUT

    @extend_schema(responses={204: None})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        end_session(serializer.validated_data["refresh"], user=request.user, access_token=request.auth)
        self.audit_actor_id = request.user.pk
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(AccountAuditMixin, generics.RetrieveAPIView):
    """The account the access token belongs to."""

    serializer_class = MeSerializer

    def get_object(self):
        return self.request.user
