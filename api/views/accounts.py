"""API tokens: sign in with a password for a first token, then list, create and revoke one's own."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.models import ApiToken
from api.permissions import token_access
from api.services import token_create, token_revoke
from api.throttling import ApiUserThrottle, TokenThrottle
from api.views.common import validated
from triage import access


class PasswordLogin(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [ApiUserThrottle, TokenThrottle]

    @extend_schema(
        summary="Exchange a user name and password for a new token",
        request=s.PasswordLoginSerializer,
        responses={201: s.NewTokenSerializer},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = validated(s.PasswordLoginSerializer, request.data)
        user = authenticate(request._request, username=data["username"], password=data["password"])
        # A user with no role may hold no token; say so exactly as for a wrong password, or the
        # answer would tell a guesser that the password was right.
        if user is None or not access.has_role(user, *access.ROLES):
            raise serializers.ValidationError({"detail": "Wrong user name or password."})
        token, key = token_create(user=user, name=data["name"])
        return Response({**s.TokenSerializer(token).data, "key": key}, status=status.HTTP_201_CREATED)


class TokenList(APIView):
    throttle_classes = [ApiUserThrottle, TokenThrottle]

    @extend_schema(summary="Your tokens (keys are never shown again)", responses={200: s.TokenSerializer(many=True)})
    def get(self, request: Request) -> Response:
        user = token_access(user=request.user)
        return Response(s.TokenSerializer(ApiToken.objects.filter(user=user), many=True).data)

    @extend_schema(summary="Create a token", request=s.TokenCreateSerializer, responses={201: s.NewTokenSerializer})
    def post(self, request: Request) -> Response:
        user = token_access(user=request.user)
        data = validated(s.TokenCreateSerializer, request.data)
        token, key = token_create(user=user, name=data["name"])
        return Response({**s.TokenSerializer(token).data, "key": key}, status=status.HTTP_201_CREATED)


class TokenDetail(APIView):
    @extend_schema(summary="Revoke one of your tokens", request=None, responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        user = token_access(user=request.user)
        token = ApiToken.objects.get(pk=token_id, user=user)  # someone else's token: 404
        token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
