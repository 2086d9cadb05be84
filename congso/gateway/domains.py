"""Every domain module, imported so that its state builders and reply hooks register."""

from . import announcements, dossiers, presence, ratings, registry, staff, work_calendar

# Imported for what importing does (each registers its builders and hooks).
REGISTERED = (announcements, dossiers, presence, ratings, registry, staff, work_calendar)
