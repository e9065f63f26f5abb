"""Ferry's custom search attributes: how Runs are filtered in visibility and the Temporal UI."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

STATUS = SearchAttributeKey.for_keyword("FerryStatus")
ENGINE = SearchAttributeKey.for_keyword("FerryEngine")
TARGET = SearchAttributeKey.for_keyword("FerryTarget")
TITLE = SearchAttributeKey.for_text("FerryTitle")
SCHEDULE = SearchAttributeKey.for_keyword("FerrySchedule")
TRIGGER = SearchAttributeKey.for_keyword("FerryTrigger")
# When the Run was created: the same for every execution of its workflow id (follow-ups
# reopen a Run as a new execution), so lists sort and page by it.
CREATED = SearchAttributeKey.for_datetime("FerryCreatedAt")

ALL = (STATUS, ENGINE, TARGET, TITLE, SCHEDULE, TRIGGER, CREATED)


def dev_server_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={key.indexed_value_type.name.title()}"]
    return flags
