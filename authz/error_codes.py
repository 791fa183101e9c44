from django.db import models


class AuthzErrorCode(models.TextChoices):
    INVALID_POLICY = "invalid_policy", "The policy string is malformed"
    UNKNOWN_RESOURCE_TYPE = "unknown_resource_type", "No such resource type"
    UNKNOWN_ACTION = "unknown_action", "The resource type has no such action"
    UNKNOWN_SUBJECT = "unknown_subject", "No such subject in this instance"
    INVALID_RESOURCE_ID = "invalid_resource_id", "The resource id is malformed or unknown"
    TOO_MANY_CHECKS = "too_many_checks", "A batch holds too many checks"
    SUBJECT_FORBIDDEN = "subject_forbidden", "Only an instance admin may check another subject"
    GROUP_NOT_FOUND = "group_not_found", "No such group"
    RESOURCE_NOT_FOUND = "resource_not_found", "No such resource"
    DUPLICATE_NAME = "duplicate_name", "The name is already taken"
    INVALID_PARENT = "invalid_parent", "The parent would make a cycle or does not exist"
    UNKNOWN_USER = "unknown_user", "No such user in this instance"
