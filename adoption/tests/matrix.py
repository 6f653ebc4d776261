"""This app's entries of the permission matrix (tests/test_permission_matrix.py).

MATRIX has the same shape as the matrix there; world_extend(world) adds this
app's objects to the shared world (world.values maps keys to ids). The
account merge's endpoints live under /api/v1/me/ (accounts) but belong to
this app's work, so their entries are here too."""

ROLES = ("anonymous", "stranger", "student", "parent", "teacher", "administrator", "official", "other_admin")
SIGNED_IN = set(ROLES) - {"anonymous"}
# The world's official works for the regional authority above school A: the
# figures and the roadmap of its region are theirs, no one else's.
OFFICIALS = {"official"}

MATRIX: dict[str, dict[str, tuple[set[str], dict[str, str], dict]]] = {
    "/api/v1/adoption/dashboard/": {"get": (OFFICIALS, {}, {})},
    "/api/v1/adoption/roadmaps/{region_code}/": {
        "get": (OFFICIALS, {"region_code": "region_code"}, {}),
        "patch": (OFFICIALS, {"region_code": "region_code"}, {"target_chats_migrated": 100}),
    },
    "/api/v1/course/": {"get": (SIGNED_IN, {}, {})},
    "/api/v1/course/steps/{step}/": {"post": (SIGNED_IN, {"step": "course_step"}, {})},
    # The other number has no account: codes go to one's own number only.
    "/api/v1/me/merge/codes/": {"post": (SIGNED_IN, {}, {"other_phone": "+79990000002"})},
    # No codes were asked for: 400 merge_not_requested, past the permission check, and nothing moves.
    "/api/v1/me/merge/": {"post": (SIGNED_IN, {}, {"code": "000000", "other_code": "000000"})},
}


def world_extend(world) -> None:
    """The region of the world's authority and the first step of the course."""
    world.values["region_code"] = world.authority.region.code
    world.values["course_step"] = 1
