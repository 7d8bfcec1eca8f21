"""The file-level import graph of our code has no circle, function-level imports included.

`lint-imports` holds the layers between packages (ARCHITECTURE.md); a circle between two files
of one app (a model importing, inside a method, the module that imports the model) is below
what a layers contract sees. grimp, which import-linter builds its graph with, records every
import statement of a file, those inside functions and under TYPE_CHECKING too.
"""

from __future__ import annotations

from collections.abc import Iterable

import grimp
import pytest

OUR_PACKAGES = ("apps", "background_tasks", "intelliwiz_config")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*OUR_PACKAGES, cache_dir=None)


def strongly_connected(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module: each holds at least one circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(root: str) -> None:
        # Iterative, so a long chain of imports never meets the recursion limit.
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return components


def describe(graph: grimp.ImportGraph, component: list[str]) -> str:
    members = set(component)
    lines = []
    for importer in component:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(
                    f"  {importer}:{detail['line_number']} imports {imported} "
                    f"({detail['line_contents'].strip()})"
                )
    return "\n".join(lines)


def test_no_module_of_ours_imports_itself_through_others(graph: grimp.ImportGraph) -> None:
    edges = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    circles = strongly_connected(graph.modules, edges)
    assert not circles, "import circles (move the code to where it belongs):\n" + "\n".join(
        describe(graph, component) for component in circles
    )


def test_nothing_in_the_apps_or_the_tasks_imports_the_config(graph: grimp.ImportGraph) -> None:
    """intelliwiz_config composes the rest (the Celery app, settings, URLs); the apps reach the
    Celery app as celery.current_app and read what it declares from its conf."""
    upward = sorted(
        f"{importer} imports {imported}"
        for importer in graph.modules
        if importer.partition(".")[0] in ("apps", "background_tasks")
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.partition(".")[0] == "intelliwiz_config"
    )
    assert not upward
