from django.db import models


class AuthzenErrorCode(models.TextChoices):
    INVALID_REQUEST = "invalid_request", "The AuthZEN request is malformed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", "The body is not application/json"
    INVALID_PAGE_TOKEN = "invalid_page_token", "The page token is not one we issued for this request"
    SERVICE_CLIENT_NOT_FOUND = "service_client_not_found", "No such service client"
    SERVICE_KEY_NOT_FOUND = "service_key_not_found", "No such service key"
    DUPLICATE_NAME = "duplicate_name", "The name is already taken"
    INVALID_ROLE = "invalid_role", "The role is not an instance role of the lattice"
    RESOURCE_TYPE_NOT_FOUND = "resource_type_not_found", "No such instance-defined resource type"
    BUILTIN_TYPE = "builtin_resource_type", "Built-in resource types cannot be redefined"
    UNKNOWN_ACTION = "unknown_action", "The resource type has no such action"
    INVALID_CONDITION = "invalid_condition", "The CEL condition does not compile or is too costly"
    UNKNOWN_SUBJECT = "unknown_subject", "No such member in this instance"
    POLICY_NOT_FOUND = "policy_not_found", "No such policy"
    EXTERNAL_ID_TAKEN = "external_id_taken", "Another member of the instance has this external id"
