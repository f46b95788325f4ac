"""Every refusal the desk's own code raises becomes a 4xx with a message, never a 500."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from api.preconditions import Stale
from diagnostics.knowledge.services import KnowledgeError
from triage.pagination import BadCursor
from triage.workflow import TransitionRefused


def _validation_detail(exc: DjangoValidationError):
    if hasattr(exc, "error_dict"):
        return {field: messages for field, messages in exc.message_dict.items()}
    return {"detail": " ".join(exc.messages)}


def exception_handler(exc, context):
    if isinstance(exc, Stale):
        return exc.answer
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_validation_detail(exc))
    elif isinstance(exc, TransitionRefused):
        exc = exceptions.ValidationError({"status": [str(exc)]})
    elif isinstance(exc, BadCursor):
        exc = exceptions.ValidationError({"cursor": ["That cursor is not valid; start again from the first page."]})
    elif isinstance(exc, KnowledgeError):
        exc = exceptions.ValidationError({"errors": exc.errors})
    elif isinstance(exc, ObjectDoesNotExist):
        exc = exceptions.NotFound()
    return drf_exception_handler(exc, context)
