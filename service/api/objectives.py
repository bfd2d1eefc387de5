"""GET /objectives: registered trainers with their default space, metric and direction."""

from __future__ import annotations

from fastapi import APIRouter

from objectives import registry
from service.api.deps import Reader
from service.api.errors import ERROR_RESPONSES
from service.schemas import ObjectivePublic, ObjectivesPublic

router = APIRouter(prefix="/objectives", tags=["objectives"], responses=ERROR_RESPONSES)


@router.get("", operation_id="list_objectives")
def list_(_: Reader) -> ObjectivesPublic:
    data = [ObjectivePublic(**obj.describe()) for obj in registry.available().values()]
    return ObjectivesPublic(data=data, count=len(data))
