"""The GraphQL schema of the mobile app: a person's assigned work, site and tickets.

Every resolver works for the authenticated person in ``info.context.user`` (the web request's
user, or the verified user of a device message) and checks that the object is theirs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import graphene
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from graphene.types.generic import GenericScalar
from graphene_django import DjangoObjectType
from graphql import GraphQLError

from apps.activity.models import (
    MAX_ANSWER_CHARS,
    Jobneed,
    JobneedDetails,
    JobneedStatus,
    Priority,
)
from apps.activity.state_machine import InvalidTransition, transition
from apps.attendance.models import AttendanceEvent
from apps.attendance.punches import record_punch, selfie_received
from apps.core.enqueue import enqueue_on_commit
from apps.core.models import Attachment
from apps.core.uploads import UploadRefused, safe_name, sniff
from apps.integrations.bulk_sync import SyncError, queue_batch
from apps.integrations.models import SyncBatch
from apps.mobile.limits import check_date_range, check_length
from apps.onboarding.models import BusinessUnit, TypeAssist
from apps.peoples.access import assigned_to, scope_of
from apps.y_helpdesk.actions import save_ticket
from apps.y_helpdesk.models import MAX_TICKET_TEXT_CHARS, Ticket


def _person(info):
    user = getattr(info.context, "user", None)
    if user is None or not user.is_authenticated:
        raise GraphQLError("authentication required")
    return user


def _my_jobneeds(person):
    """The person's own work: assigned to them or their groups, among what they may see."""
    return Jobneed.objects.visible_to(person).filter(assigned_to(scope_of(person))).distinct()


def _my_tickets(person):
    """Tickets they raised or that are assigned to them, among what they may see."""
    return (
        Ticket.objects.visible_to(person)
        .filter(Q(created_by=person) | Q(assigned_people=person))
        .distinct()
    )


class SiteType(DjangoObjectType):
    class Meta:
        model = BusinessUnit
        fields = ("id", "code", "name", "time_zone")


class DetailType(DjangoObjectType):
    class Meta:
        model = JobneedDetails
        fields = (
            "uuid",
            "seqno",
            "question",
            "answer_type",
            "options",
            "min_value",
            "max_value",
            "answer",
            "is_alert",
            "transcript",
            "transcript_status",
        )


class JobneedType(DjangoObjectType):
    class Meta:
        model = Jobneed
        fields = ("uuid", "description", "identifier", "plan_at", "expiry_at", "status", "details")


class TicketType(DjangoObjectType):
    class Meta:
        model = Ticket
        fields = ("id", "description", "status", "priority", "escalation_level", "created_at")


class Query(graphene.ObjectType):
    my_jobneeds = graphene.List(
        graphene.NonNull(JobneedType),
        date_from=graphene.DateTime(required=True),
        date_to=graphene.DateTime(required=True),
    )
    my_site = graphene.Field(SiteType)
    my_tickets = graphene.List(graphene.NonNull(TicketType))
    my_attendance = graphene.List(graphene.NonNull(lambda: AttendanceType))
    my_sync_batch = graphene.Field(lambda: SyncBatchType, id=graphene.UUID(required=True))

    def resolve_my_jobneeds(self, info, date_from, date_to):
        check_date_range(date_from, date_to)
        return (
            _my_jobneeds(_person(info))
            .filter(plan_at__gte=date_from, plan_at__lt=date_to, parent__isnull=True)
            .prefetch_related("details")
            .order_by("plan_at")
        )

    def resolve_my_site(self, info):
        return _person(info).site

    def resolve_my_tickets(self, info):
        return _my_tickets(_person(info)).order_by("-created_at")[:200]

    def resolve_my_sync_batch(self, info, id):
        batch = SyncBatch.objects.filter(uuid=id, sender=_person(info)).first()
        if batch is None:
            raise GraphQLError("no such batch of yours")
        return batch

    def resolve_my_attendance(self, info):
        person = _person(info)
        return AttendanceEvent.objects.visible_to(person).filter(person=person)[:50]


class AnswerInput(graphene.InputObjectType):
    seqno = graphene.Int(required=True)
    answer = graphene.String(required=True)


class SubmitJobneedAnswers(graphene.Mutation):
    class Arguments:
        jobneed_uuid = graphene.UUID(required=True)
        answers = graphene.List(graphene.NonNull(AnswerInput), required=True)
        complete = graphene.Boolean(default_value=False)

    jobneed = graphene.Field(JobneedType)
    alerts = graphene.Int()

    def mutate(self, info, jobneed_uuid, answers, complete):
        person = _person(info)
        jobneed = _my_jobneeds(person).filter(uuid=jobneed_uuid).first()
        if jobneed is None:
            raise GraphQLError("no such jobneed assigned to you")
        details = {d.seqno: d for d in jobneed.details.all()}
        unknown = sorted({a.seqno for a in answers} - set(details))
        if unknown:
            raise GraphQLError(f"no question with seqno {', '.join(map(str, unknown))}")
        for item in answers:
            check_length(f"the answer to question {item.seqno}", item.answer, MAX_ANSWER_CHARS)
        with transaction.atomic():
            for item in answers:
                detail = details[item.seqno]
                detail.answer = item.answer
                detail.is_alert = detail.raises_alert(item.answer)
            JobneedDetails.objects.bulk_update(details.values(), ["answer", "is_alert"])
            alerts = sum(d.is_alert for d in details.values())
            if alerts and not jobneed.has_alerts:
                Jobneed.objects.filter(pk=jobneed.pk).update(has_alerts=True)
                enqueue_on_commit("alert_sendmail", jobneed.pk, "observation")
            if complete:
                try:
                    if jobneed.status == JobneedStatus.ASSIGNED:
                        transition(jobneed, JobneedStatus.INPROGRESS)
                    transition(jobneed, JobneedStatus.COMPLETED, performed_by=person)
                except InvalidTransition as exc:
                    raise GraphQLError(str(exc)) from None
        return SubmitJobneedAnswers(jobneed=jobneed, alerts=alerts)


class CreateTicket(graphene.Mutation):
    class Arguments:
        description = graphene.String(required=True)
        priority = graphene.String(default_value="MEDIUM")
        category_code = graphene.String()

    ticket = graphene.Field(TicketType)

    def mutate(self, info, description, priority, category_code=None):
        person = _person(info)
        if person.site_id is None:
            raise GraphQLError("you are not assigned to a site")
        if priority not in Priority.values:
            raise GraphQLError(f"priority must be one of LOW, MEDIUM, HIGH; got {priority!r}")
        category = None
        if category_code:
            category = TypeAssist.objects.filter(
                category=TypeAssist.Category.TICKETCATEGORY, code=category_code
            ).first()
            if category is None:
                raise GraphQLError(f"unknown ticket category {category_code!r}")
        ticket = Ticket(
            description=check_length("description", description.strip(), MAX_TICKET_TEXT_CHARS),
            priority=priority,
            category=category,
            site_id=person.site_id,
        )
        if not ticket.description:
            raise GraphQLError("description must not be empty")
        save_ticket(ticket, person, created=True)
        return CreateTicket(ticket=ticket)


class UpdateTicket(graphene.Mutation):
    class Arguments:
        id = graphene.ID(required=True)
        status = graphene.String()
        comments = graphene.String()

    ticket = graphene.Field(TicketType)

    def mutate(self, info, id, status=None, comments=None):
        person = _person(info)
        ticket = _my_tickets(person).filter(pk=id).first()
        if ticket is None:
            raise GraphQLError("no such ticket of yours")
        if status is not None:
            if status not in Ticket.Status.values:
                raise GraphQLError(f"status must be one of {', '.join(Ticket.Status.values)}")
            ticket.status = status
        # `comments` (the argument's name, kept for the app) appends to the conversation.
        comment = check_length("comments", comments or "", MAX_TICKET_TEXT_CHARS)
        save_ticket(ticket, person, created=False, comment=comment)
        return UpdateTicket(ticket=ticket)


class AttendanceType(DjangoObjectType):
    class Meta:
        model = AttendanceEvent
        fields = (
            "uuid",
            "kind",
            "at",
            "latitude",
            "longitude",
            "inside_geofence",
            "face_outcome",
            "face_matched",
            "face_checked_at",
        )


class RecordAttendanceEvent(graphene.Mutation):
    class Arguments:
        kind = graphene.String(required=True)
        at = graphene.DateTime(required=True)
        latitude = graphene.Decimal()
        longitude = graphene.Decimal()

    event = graphene.Field(AttendanceType)

    def mutate(self, info, kind, at, latitude=None, longitude=None):
        person = _person(info)
        if person.site_id is None:
            raise GraphQLError("you are not assigned to a site")
        if kind not in AttendanceEvent.Kind.values:
            raise GraphQLError(f"kind must be one of {', '.join(AttendanceEvent.Kind.values)}")
        if (latitude is None) != (longitude is None) or (
            latitude is not None and not (-90 <= latitude <= 90 and -180 <= longitude <= 180)
        ):
            raise GraphQLError("give both latitude (-90..90) and longitude (-180..180), or neither")
        event = record_punch(person, kind, at, latitude, longitude)
        return RecordAttendanceEvent(event=event)


class AttachmentType(DjangoObjectType):
    class Meta:
        model = Attachment
        fields = ("uuid", "kind", "filename", "size", "checksum")


class UploadAttachment(graphene.Mutation):
    """A file (base64) for one of the person's jobneeds, answers or attendance events."""

    class Arguments:
        owner_uuid = graphene.UUID(required=True)
        kind = graphene.String(required=True)
        filename = graphene.String(required=True)
        content_base64 = graphene.String(required=True)

    attachment = graphene.Field(AttachmentType)

    def mutate(self, info, owner_uuid, kind, filename, content_base64):
        person = _person(info)
        if kind not in Attachment.Kind.values:
            raise GraphQLError(f"kind must be one of {', '.join(Attachment.Kind.values)}")
        owner_type = _owner_type(person, owner_uuid)
        try:
            content = base64.b64decode(content_base64, validate=True)
        except binascii.Error:
            raise GraphQLError("contentBase64 is not valid base64") from None
        if not content or len(content) > settings.MOBILE_MAX_UPLOAD_BYTES:
            raise GraphQLError(f"a file must be 1 to {settings.MOBILE_MAX_UPLOAD_BYTES} bytes")
        try:
            content_type = sniff(kind, content)
        except UploadRefused as exc:
            raise GraphQLError(str(exc)) from None
        name = safe_name(filename)
        attachment = Attachment(
            owner_type=owner_type,
            owner_uuid=owner_uuid,
            kind=kind,
            filename=name,
            size=len(content),
            checksum=hashlib.sha256(content).hexdigest(),
            content_type=content_type,
        )
        attachment.file.save(name, ContentFile(content), save=True)
        _process_in_background(attachment)
        return UploadAttachment(attachment=attachment)


def _process_in_background(attachment: Attachment) -> None:
    """A punch's selfie is verified against the person's face; an answer's audio is
    transcribed. Both run once the upload commits; their outcomes show in myAttendance and
    myJobneeds."""

    if (
        attachment.owner_type == "attendance.attendanceevent"
        and attachment.kind == Attachment.Kind.SELFIE
    ):
        selfie_received(AttendanceEvent.objects.get(uuid=attachment.owner_uuid))
    elif (
        attachment.owner_type == "activity.jobneeddetails"
        and attachment.kind == Attachment.Kind.AUDIO
    ):
        detail = JobneedDetails.objects.get(uuid=attachment.owner_uuid)
        JobneedDetails.objects.filter(pk=detail.pk).update(
            transcript_status=JobneedDetails.TranscriptStatus.PENDING
        )
        enqueue_on_commit("process_audio_transcript", detail.pk)


def _owner_type(person, owner_uuid) -> str:
    jobneeds = _my_jobneeds(person)
    if jobneeds.filter(uuid=owner_uuid).exists():
        return "activity.jobneed"
    if JobneedDetails.objects.filter(uuid=owner_uuid, jobneed__in=jobneeds).exists():
        return "activity.jobneeddetails"
    if AttendanceEvent.objects.filter(uuid=owner_uuid, person=person).exists():
        return "attendance.attendanceevent"
    raise GraphQLError("no such jobneed, answer or attendance event of yours")


class SyncRecordType(graphene.ObjectType):
    index = graphene.Int()
    uuid = graphene.String()
    reason = graphene.String()


class SyncBatchType(DjangoObjectType):
    rejected = graphene.List(graphene.NonNull(SyncRecordType))

    class Meta:
        model = SyncBatch
        fields = ("uuid", "table", "records", "status", "applied", "created_at", "finished_at")

    def resolve_rejected(self, info):
        return [SyncRecordType(**item) for item in self.rejected]


class SyncRecords(graphene.Mutation):
    """A device's offline batch, applied in the background (mySyncBatch tells the outcome of
    every record)."""

    class Arguments:
        table = graphene.String(required=True)
        records = GenericScalar(required=True)

    batch = graphene.Field(SyncBatchType)

    def mutate(self, info, table, records):
        try:
            batch = queue_batch(records, table, _person(info))
        except SyncError as exc:
            raise GraphQLError(str(exc)) from None
        return SyncRecords(batch=batch)


class Mutation(graphene.ObjectType):
    sync_records = SyncRecords.Field()
    record_attendance_event = RecordAttendanceEvent.Field()
    upload_attachment = UploadAttachment.Field()
    submit_jobneed_answers = SubmitJobneedAnswers.Field()
    create_ticket = CreateTicket.Field()
    update_ticket = UpdateTicket.Field()


schema = graphene.Schema(query=Query, mutation=Mutation)
