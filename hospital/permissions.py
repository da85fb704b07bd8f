from rest_framework.permissions import SAFE_METHODS, BasePermission


class IsCreatorOrStaffForWrites(BasePermission):
    """Doctors are a shared directory: anyone signed in reads; only the creator or staff changes one."""

    message = "Only the doctor's creator or staff may change or delete this doctor."

    def has_object_permission(self, request, view, obj):
        return request.method in SAFE_METHODS or request.user.is_staff or obj.created_by_id == request.user.id
