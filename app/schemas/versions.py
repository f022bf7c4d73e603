"""The version discovery document (``GET /``)."""

from pydantic import BaseModel


class Link(BaseModel):
    rel: str
    href: str


class Version(BaseModel):
    id: str
    max_version: str
    min_version: str
    status: str
    links: list[Link]


class Versions(BaseModel):
    versions: list[Version]
