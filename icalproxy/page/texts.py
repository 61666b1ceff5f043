"""The client page's texts and date formats in English, German and French (feed key ``locale``)."""

from __future__ import annotations

from datetime import date, datetime

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "subscribe": "Subscribe to this calendar",
        "subscribe_intro": "Your jobs appear in your own calendar app and stay up to date.",
        "apple": "Apple Calendar (iPhone, Mac)",
        "google": "Add to Google Calendar",
        "outlook": "Add to Outlook",
        "webcal": "Open in calendar app (webcal)",
        "copy_label": "Calendar link",
        "copy_button": "Copy link",
        "copied": "Copied",
        "refresh": "How often calendars update",
        "refresh_google": "Google Calendar: every 8 to 24 hours.",
        "refresh_outlook": "Outlook: up to once a day.",
        "refresh_apple": "Apple Calendar: as set under the subscription's auto-refresh setting.",
        "work": "Work in progress",
        "current": "Now",
        "upcoming": "Upcoming",
        "finished": "Recently finished",
        "none": "No current or upcoming jobs.",
        "status": "Status",
        "since": "since {when}",
        "times": "Times in {zone}. Updated {when}.",
        "private": "This page is private: anyone with its link can see it. Do not share it.",
    },
    "de": {
        "subscribe": "Diesen Kalender abonnieren",
        "subscribe_intro": "Ihre Aufträge erscheinen in Ihrer eigenen Kalender-App und bleiben aktuell.",
        "apple": "Apple Kalender (iPhone, Mac)",
        "google": "Zu Google Kalender hinzufügen",
        "outlook": "Zu Outlook hinzufügen",
        "webcal": "In Kalender-App öffnen (webcal)",
        "copy_label": "Kalender-Link",
        "copy_button": "Link kopieren",
        "copied": "Kopiert",
        "refresh": "Wie oft Kalender aktualisieren",
        "refresh_google": "Google Kalender: alle 8 bis 24 Stunden.",
        "refresh_outlook": "Outlook: bis zu einmal am Tag.",
        "refresh_apple": "Apple Kalender: nach der Einstellung „Automatisch aktualisieren“ des Abos.",
        "work": "Laufende Arbeiten",
        "current": "Jetzt",
        "upcoming": "Demnächst",
        "finished": "Kürzlich abgeschlossen",
        "none": "Keine laufenden oder anstehenden Aufträge.",
        "status": "Status",
        "since": "seit {when}",
        "times": "Zeiten in {zone}. Aktualisiert {when}.",
        "private": "Diese Seite ist privat: Wer den Link hat, kann sie sehen. Bitte nicht weitergeben.",
    },
    "fr": {
        "subscribe": "S’abonner à ce calendrier",
        "subscribe_intro": "Vos interventions apparaissent dans votre propre agenda et restent à jour.",
        "apple": "Calendrier Apple (iPhone, Mac)",
        "google": "Ajouter à Google Agenda",
        "outlook": "Ajouter à Outlook",
        "webcal": "Ouvrir dans l’agenda (webcal)",
        "copy_label": "Lien du calendrier",
        "copy_button": "Copier le lien",
        "copied": "Copié",
        "refresh": "Fréquence de mise à jour des agendas",
        "refresh_google": "Google Agenda : toutes les 8 à 24 heures.",
        "refresh_outlook": "Outlook : jusqu’à une fois par jour.",
        "refresh_apple": "Calendrier Apple : selon le réglage d’actualisation de l’abonnement.",
        "work": "Travaux en cours",
        "current": "En cours",
        "upcoming": "À venir",
        "finished": "Terminés récemment",
        "none": "Aucune intervention en cours ou à venir.",
        "status": "Statut",
        "since": "depuis le {when}",
        "times": "Heures en {zone}. Mis à jour le {when}.",
        "private": "Cette page est privée : toute personne ayant le lien peut la voir. Ne la partagez pas.",
    },
}

_DAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "de": ("Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So."),
    "fr": ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."),
}
_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "de": ("Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."),
    "fr": ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."),
}


def format_date(day: date, locale: str) -> str:
    """``Wed 2 Dec 2026`` · ``Mi., 2. Dez. 2026`` · ``mer. 2 déc. 2026``."""
    weekday, month = _DAYS[locale][day.weekday()], _MONTHS[locale][day.month - 1]
    if locale == "de":
        return f"{weekday}, {day.day}. {month} {day.year}"
    return f"{weekday} {day.day} {month} {day.year}"


def format_time(moment: datetime, locale: str) -> str:
    """24-hour clock: ``14:30`` (en, de), ``14 h 30`` (fr)."""
    if locale == "fr":
        return f"{moment.hour} h {moment.minute:02d}"
    return f"{moment.hour:02d}:{moment.minute:02d}"
