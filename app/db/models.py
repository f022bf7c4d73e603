"""Tables, mirroring the reference's schema table for table.

Names, types, nullability, unique constraints and indexes match the reference
(alembic head ``a082b8bb98d0``) so either service can run on a database the
other created.
"""

from datetime import datetime
from typing import cast

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData()


class TimestampMixin:
    created_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ResourceClass(TimestampMixin, Base):
    __tablename__ = "resource_classes"
    __table_args__ = (UniqueConstraint("name", name="uniq_resource_classes0name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)


class ResourceProvider(TimestampMixin, Base):
    __tablename__ = "resource_providers"
    __table_args__ = (
        UniqueConstraint("uuid", name="uniq_resource_providers0uuid"),
        UniqueConstraint("name", name="uniq_resource_providers0name"),
        Index("resource_providers_root_provider_id_idx", "root_provider_id"),
        Index("resource_providers_parent_provider_id_idx", "parent_provider_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    name: Mapped[str | None] = mapped_column(Unicode(200), nullable=True)
    generation: Mapped[int | None] = mapped_column(Integer, default=0)
    root_provider_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("resource_providers.id"), nullable=True
    )
    parent_provider_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("resource_providers.id"), nullable=True
    )


class Inventory(TimestampMixin, Base):
    __tablename__ = "inventories"
    __table_args__ = (
        UniqueConstraint(
            "resource_provider_id",
            "resource_class_id",
            name="uniq_inventories0resource_provider_resource_class",
        ),
        Index("inventories_resource_class_id_idx", "resource_class_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_provider_id: Mapped[int] = mapped_column(Integer, nullable=False)
    resource_class_id: Mapped[int] = mapped_column(Integer, nullable=False)
    total: Mapped[int] = mapped_column(Integer, nullable=False)
    reserved: Mapped[int] = mapped_column(Integer, nullable=False)
    min_unit: Mapped[int] = mapped_column(Integer, nullable=False)
    max_unit: Mapped[int] = mapped_column(Integer, nullable=False)
    step_size: Mapped[int] = mapped_column(Integer, nullable=False)
    allocation_ratio: Mapped[float] = mapped_column(Float, nullable=False)


class Allocation(TimestampMixin, Base):
    __tablename__ = "allocations"
    __table_args__ = (
        Index(
            "allocations_resource_provider_class_used_idx",
            "resource_provider_id",
            "resource_class_id",
            "used",
        ),
        Index("allocations_resource_class_id_idx", "resource_class_id"),
        Index("allocations_consumer_id_idx", "consumer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_provider_id: Mapped[int] = mapped_column(Integer, nullable=False)
    consumer_id: Mapped[str] = mapped_column(String(36), nullable=False)
    resource_class_id: Mapped[int] = mapped_column(Integer, nullable=False)
    used: Mapped[int] = mapped_column(Integer, nullable=False)


class PlacementAggregate(TimestampMixin, Base):
    __tablename__ = "placement_aggregates"
    __table_args__ = (UniqueConstraint("uuid", name="uniq_placement_aggregates0uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)


class ResourceProviderAggregate(TimestampMixin, Base):
    __tablename__ = "resource_provider_aggregates"
    __table_args__ = (
        Index("resource_provider_aggregates_aggregate_id_idx", "aggregate_id"),
    )

    resource_provider_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aggregate_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class Trait(TimestampMixin, Base):
    __tablename__ = "traits"
    __table_args__ = (UniqueConstraint("name", name="uniq_traits0name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Unicode(255), nullable=False)


class ResourceProviderTrait(TimestampMixin, Base):
    __tablename__ = "resource_provider_traits"
    __table_args__ = (
        Index(
            "resource_provider_traits_resource_provider_trait_idx",
            "resource_provider_id",
            "trait_id",
        ),
    )

    trait_id: Mapped[int] = mapped_column(Integer, ForeignKey("traits.id"), primary_key=True)
    resource_provider_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("resource_providers.id"), primary_key=True
    )


class Project(TimestampMixin, Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("external_id", name="uniq_projects0external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("external_id", name="uniq_users0external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)


class ConsumerType(TimestampMixin, Base):
    __tablename__ = "consumer_types"
    __table_args__ = (UniqueConstraint("name", name="uniq_consumer_types0name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Unicode(255), nullable=False)


class Consumer(TimestampMixin, Base):
    __tablename__ = "consumers"
    __table_args__ = (
        UniqueConstraint("uuid", name="uniq_consumers0uuid"),
        Index("consumers_project_id_uuid_idx", "project_id", "uuid"),
        Index("consumers_project_id_user_id_uuid_idx", "project_id", "user_id", "uuid"),
        Index("consumers_consumer_type_id_idx", "consumer_type_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    project_id: Mapped[int] = mapped_column(Integer, nullable=False)
    user_id: Mapped[int] = mapped_column(Integer, nullable=False)
    generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    consumer_type_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("consumer_types.id", name="consumers_consumer_type_id_fkey"),
        nullable=True,
    )


resource_classes = cast(Table, ResourceClass.__table__)
resource_providers = cast(Table, ResourceProvider.__table__)
inventories = cast(Table, Inventory.__table__)
allocations = cast(Table, Allocation.__table__)
placement_aggregates = cast(Table, PlacementAggregate.__table__)
resource_provider_aggregates = cast(Table, ResourceProviderAggregate.__table__)
traits = cast(Table, Trait.__table__)
resource_provider_traits = cast(Table, ResourceProviderTrait.__table__)
projects = cast(Table, Project.__table__)
users = cast(Table, User.__table__)
consumer_types = cast(Table, ConsumerType.__table__)
consumers = cast(Table, Consumer.__table__)
