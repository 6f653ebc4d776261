"""Django admin for superusers and the organisations' own administrators.

A superuser sees everything. Anyone else with an active administrator
membership may use the admin without Django model permissions and sees only
the rows of the organisations they administer (for an authority, its whole
subtree: `selectors.administered_organisations`). Every choice a form offers
(organisations, people) is cut to that scope, and every save goes through
the services, so the audit log records it; the few plain saves left record
their audit entry where they happen.

Importing this package registers every model (Django's admin autodiscovery
does). The modules:

- scoping: who may use the admin, the scope of their organisations, the
  scoped ModelAdmin base and the site's sign-in;
- directory: organisations; importing: the import of classes and members
  and the import records;
- memberships, verification: roles and the educator verification queue;
- study_groups: classes with their teachers and students;
- guardianship: parents linked to students, and guardianship codes.
"""

from organisations.admin.directory import OrganisationAdmin, OrganisationForm
from organisations.admin.guardianship import GuardianshipAdmin, GuardianshipCodeAdmin
from organisations.admin.importing import ImportForm, ImportJobAdmin
from organisations.admin.memberships import MembershipAdmin, PersonFieldsMixin
from organisations.admin.scoping import (
    ActiveFilter,
    OrganisationScopeMixin,
    ScopedModelAdmin,
    ScopedRawIdWidget,
    organisation_in_scope,
    organisation_scope,
    user_is_administrator,
    user_may_use_admin,
)
from organisations.admin.study_groups import StudyGroupAdmin, StudyGroupForm
from organisations.admin.verification import VerificationRequestAdmin

# Moved to the selectors; still importable from here, as before.
from organisations.selectors import administered_users

__all__ = [
    "ActiveFilter",
    "GuardianshipAdmin",
    "GuardianshipCodeAdmin",
    "ImportForm",
    "ImportJobAdmin",
    "MembershipAdmin",
    "OrganisationAdmin",
    "OrganisationForm",
    "OrganisationScopeMixin",
    "PersonFieldsMixin",
    "ScopedModelAdmin",
    "ScopedRawIdWidget",
    "StudyGroupAdmin",
    "StudyGroupForm",
    "VerificationRequestAdmin",
    "administered_users",
    "organisation_in_scope",
    "organisation_scope",
    "user_is_administrator",
    "user_may_use_admin",
]
