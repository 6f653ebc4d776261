from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LessonsConfig(AppConfig):
    name = "lessons"
    verbose_name = _("Lessons and meetings")

    def ready(self) -> None:
        from accounts.extensions import personal_data_provider_register
        from lessons.selectors import personal_data_sections

        # A person's meetings, attendance and reminders are part of their
        # personal data export (152-FZ).
        personal_data_provider_register(personal_data_sections)
        from accounts.merge import merge_mover_register
        from lessons.merge import lessons_merge_move

        # Merging two accounts of one person folds their lesson history.
        merge_mover_register(lessons_merge_move)
