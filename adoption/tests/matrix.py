"""This app's entries of the permission matrix (tests/test_permission_matrix.py).

MATRIX has the same shape as the matrix there; world_extend(world) adds this
app's objects to the shared world (world.values maps keys to ids)."""

MATRIX: dict[str, dict[str, tuple[set[str], dict[str, str], dict]]] = {}


def world_extend(world) -> None:
    """Nothing of this app's yet."""
