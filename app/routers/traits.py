"""Placeholder: routes of this resource are being written."""

from fastapi import APIRouter

router = APIRouter()
