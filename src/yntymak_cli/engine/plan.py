"""Static facts about a form that the engine consults at every step, computed once per form.

The engine walks "containers": the top level (key ``ROOT``) and each repeat (keyed by its
name). A container's items are its questions in form order with groups flattened in place
and nested repeats kept as single items, so a position in a survey is (container, index).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from yntymak_cli.errors import YntymakError
from yntymak_cli.forms import expressions as ex
from yntymak_cli.forms.model import EXPRESSION_KEYS, INPUT_TYPES, SELECT_TYPES, Form, Question

ROOT = ""  # container key of the top level; question names are never empty

# Question keys holding expressions, evaluated by the engine.


class EngineError(YntymakError):
    """The engine was called with a path or form it cannot work with (a caller's bug)."""


def step_kind(q: Question) -> str | None:
    """The kind of step a question shows as, or None when it is never shown."""
    base = q.base_type
    if base in INPUT_TYPES or base in SELECT_TYPES:
        return "note" if q.read_only else "question"
    if base == "note":
        return "note"
    if base == "unsupported":
        return "unsupported"
    return None  # calculate, metadata, group, repeat


@dataclass
class Plan:
    form: Form
    items: dict[str, list[Question]] = field(default_factory=dict)
    # ends[c][i]: index just past item i's subtree in container c (skips a whole group).
    ends: dict[str, list[int]] = field(default_factory=dict)
    pos: dict[str, int] = field(default_factory=dict)
    container: dict[str, str] = field(default_factory=dict)
    parent: dict[str, Question | None] = field(default_factory=dict)
    rpath: dict[str, tuple[str, ...]] = field(default_factory=dict)  # enclosing repeats
    pre: dict[str, int] = field(default_factory=dict)  # preorder rank: orders node paths
    kind: dict[str, str | None] = field(default_factory=dict)
    exprs: dict[tuple[str, str], ex.Expr] = field(default_factory=dict)
    deps: dict[str, set[str]] = field(default_factory=dict)
    dependants: dict[str, set[str]] = field(default_factory=dict)
    rank: dict[str, int] = field(default_factory=dict)  # topological: dependencies first
    work: list[str] = field(default_factory=list)  # calculates and counted repeats, by rank
    _closures: dict[str, tuple[frozenset[str], tuple[str, ...]]] = field(default_factory=dict)

    @classmethod
    def of(cls, form: Form) -> Plan:
        plan = cls(form)
        plan.items[ROOT], plan.ends[ROOT] = [], []
        plan._add(form.questions, ROOT, None, ())
        plan._parse_expressions()
        plan._order()
        return plan

    def _add(
        self, questions: list[Question], cont: str, parent: Question | None, rpath: tuple[str, ...]
    ) -> None:
        items, ends = self.items[cont], self.ends[cont]
        for q in questions:
            if q.name in self.pos:  # duplicate names are a validation error; first one wins
                continue
            i = len(items)
            items.append(q)
            ends.append(i + 1)
            self.pos[q.name], self.container[q.name] = i, cont
            self.parent[q.name], self.rpath[q.name] = parent, rpath
            self.pre[q.name] = len(self.pre)
            self.kind[q.name] = step_kind(q)
            if q.is_repeat:
                self.items[q.name], self.ends[q.name] = [], []
                self._add(q.questions, q.name, q, (*rpath, q.name))
            elif q.questions:
                self._add(q.questions, cont, q, rpath)
                ends[i] = len(items)

    def _parse_expressions(self) -> None:
        for name, q in self._questions():
            keys = [k for k in EXPRESSION_KEYS if getattr(q, k)]
            if isinstance(q.required, str):
                keys.append("required")
            for key in keys:
                text = getattr(q, key)
                try:
                    self.exprs[(name, key)] = ex.parse(text)
                except ex.ExpressionError as exc:
                    raise EngineError(f"question '{name}': {key}: {exc.message}") from None

    def _questions(self) -> list[tuple[str, Question]]:
        return [(q.name, q) for items in self.items.values() for q in items]

    def _order(self) -> None:
        """Dependency graph over names: a node's relevance/value depends on the questions its
        relevant/calculation/repeat_count refer to and on its parent (relevance is inherited)."""
        names = [name for name, _ in self._questions()]
        for name in names:
            deps: set[str] = set()
            for key in ("relevant", "calculation", "repeat_count"):
                expr = self.exprs.get((name, key))
                if expr is not None:
                    deps.update(r for r in expr.refs() if r in self.pos)
            parent = self.parent[name]
            if parent is not None:
                deps.add(parent.name)
            self.deps[name] = deps
            self.dependants.setdefault(name, set())
            for d in deps:
                self.dependants.setdefault(d, set()).add(name)
        # Depth-first postorder; tolerant of cycles (validation reports calculation cycles,
        # relevance cycles just get an arbitrary order instead of hanging).
        state: dict[str, int] = {}
        order: list[str] = []
        for root in sorted(names, key=self.pre.__getitem__):
            if root in state:
                continue
            stack = [(root, iter(sorted(self.deps[root], key=self.pre.__getitem__)))]
            state[root] = 1
            while stack:
                node, it = stack[-1]
                nxt = next((d for d in it if d not in state), None)
                if nxt is None:
                    stack.pop()
                    state[node] = 2
                    order.append(node)
                else:
                    state[nxt] = 1
                    stack.append((nxt, iter(sorted(self.deps[nxt], key=self.pre.__getitem__))))
        self.rank = {name: i for i, name in enumerate(order)}
        self.work = [n for n in order if self.is_work(n)]

    def is_work(self, name: str) -> bool:
        """Nodes the engine recomputes eagerly: calculations and counted repeats."""
        return (name, "calculation") in self.exprs or (name, "repeat_count") in self.exprs

    def closure(self, name: str) -> tuple[frozenset[str], tuple[str, ...]]:
        """Everything whose relevance or value may change when `name` changes, and the
        calculations/counted repeats among them in dependency order."""
        cached = self._closures.get(name)
        if cached is None:
            seen: set[str] = set()
            todo = list(self.dependants.get(name, ()))
            while todo:
                node = todo.pop()
                if node not in seen:
                    seen.add(node)
                    todo.extend(self.dependants.get(node, ()))
            work = tuple(sorted((n for n in seen if self.is_work(n)), key=self.rank.__getitem__))
            cached = self._closures[name] = (frozenset(seen), work)
        return cached

    def key(self, path: tuple) -> tuple:
        """Sort key of a node path in survey order (names by preorder, indices as they are)."""
        return tuple(self.pre[p] if isinstance(p, str) else p for p in path)
