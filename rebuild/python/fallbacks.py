"""What the PyPI adapter tries next when a setuptools build fails or differs in its metadata.

The verify loop calls a resolution's fallback after each attempt that did not
reproduce (``rebuild.resolution.Fallback``). For a setuptools wheel there are
two cases, each decided from the attempt's outcome, never guessed in advance:

- **an option the adapter added is refused** (``error: option --universal not
  recognized``: some setuptools give pip's ``--build-option`` to ``egg_info``
  too). The attempt is tried again without it, and so is every pending
  candidate that had it; the ``py2.py3`` tag is then asked for by the build
  user's distutils config (``[bdist_wheel] universal = 1``), which reaches
  ``bdist_wheel`` with every setuptools, as the sdist's own ``setup.cfg`` may
  already say.
- **members only on one side, or other ``METADATA``/``WHEEL`` content**
  (license files moved, the metadata version changed): the publisher's
  setuptools was not the newest at the upload. The wheelhouse is resolved
  again with the setuptools of the era of the ``wheel`` version in
  ``Generator: bdist_wheel (X)`` (``rebuild.python.era``), everything else
  held to that time as well, and the attempt and the pending candidates are
  tried with it. The report says which setuptools versions were tried.

Only names and values already in the plan are ever removed or replaced: the
log is read for the name of a refused option (letters, digits and dashes), and
an option the plan does not hold is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from rebuild.build.images import ImageSpec
from rebuild.plan import BuildPlan, Inference, Input
from rebuild.python import distributions
from rebuild.python.builders import Resolver, version_of
from rebuild.python.era import Era, parse_version, setuptools_of_era
from rebuild.python.index import SimpleIndex
from rebuild.python.pinning import resolve_as_of
from rebuild.python.tags import is_universal_setuptools_wheel, universal_way
from rebuild.python.wheelhouse import PythonTarget
from rebuild.recipes import Recipe
from rebuild.resolution import Candidate, Followup, Outcome

REFUSED_OPTION = re.compile(r"error: option (--[A-Za-z][A-Za-z0-9-]{0,40}) not recognized")
TAG = "wheel tag py2.py3"
ERA = "of its wheel's era"  # in the setuptools inference of a plan this fallback made
METADATA_MEMBERS = (".dist-info/METADATA", ".dist-info/WHEEL")


def refused_option(outcome: Outcome) -> str | None:
    """The option a failed build's setuptools refused, when its log or message names one."""
    if not outcome.build_error:
        return None
    match = REFUSED_OPTION.search(outcome.build_log) or REFUSED_OPTION.search(outcome.build_error)
    return match.group(1) if match else None


def without_option(pip_args: str, option: str) -> str | None:
    """``pip_args`` without the words that pass ``option`` on (None when none does)."""
    words = pip_args.split()
    kept = [w for w in words if not (w == option or w.endswith(f"={option}") or f"={option}=" in w)]
    return " ".join(kept) if len(kept) < len(words) else None


def metadata_differs(outcome: Outcome) -> str | None:
    """What in the comparison says the metadata was written by another setuptools, or None."""
    for comparison in outcome.comparisons:
        explanation = comparison.explanation
        for diff in explanation.differences if explanation else ():
            if diff.status in ("only-a", "only-b"):
                return f"{diff.path} is in one wheel only"
            if diff.status == "content" and diff.path.endswith(METADATA_MEMBERS):
                return f"{diff.path}'s content differs"
    return None


@dataclass
class SetuptoolsFallback:
    """The ``pypi:`` resolution's fallback (``rebuild.resolution.Fallback``)."""

    recipe: Recipe
    index: SimpleIndex
    index_url: str
    build_requirements: Sequence[str]  # as pinned for the first attempts
    wheel_filename: str
    backend: str
    generator: str  # the published WHEEL's Generator line
    uploaded: datetime | None
    cache_dir: Path | None = None
    resolve: Resolver = resolve_as_of
    _wheelhouses: dict[tuple[str, str], tuple[tuple[Input, ...], list[Inference]]] = field(default_factory=dict)

    def __call__(self, outcome: Outcome, pending: Sequence[Candidate]) -> Followup:
        """Raises: FetchError, InputError, PlanError (the loop then tries nothing more, and says so)."""
        option = refused_option(outcome)
        if option is not None:
            return self._without(option, outcome, pending)
        why = metadata_differs(outcome)
        if why is not None:
            return self._of_era(why, outcome, pending)
        return Followup()

    # --- a refused option ---------------------------------------------------------

    def _without(self, option: str, outcome: Outcome, pending: Sequence[Candidate]) -> Followup:
        failed = outcome.candidate
        if without_option(failed.plan.parameters.get("pip_args", ""), option) is None:
            return Followup()  # not an option this adapter added: nothing to drop
        setuptools = version_of("setuptools", failed.plan.inputs)
        retried = self._drop(failed, option, setuptools)
        rewritten = tuple(self._drop(c, option, version_of("setuptools", c.plan.inputs)) for c in pending)
        note = f"setuptools {setuptools or '(unknown)'} refused {option}: tried again without it"
        return Followup((retried,), rewritten, (note,))

    def _drop(self, candidate: Candidate, option: str, setuptools: Version | None) -> Candidate:
        params = dict(candidate.plan.parameters)
        args = without_option(params.get("pip_args", ""), option)
        if args is None:
            return candidate
        params["pip_args"] = args
        why = f"setuptools {setuptools or '(unknown)'} refused {option} ('error: option {option} not recognized')"
        inferences = [i for i in candidate.plan.inferences if i.field != TAG]
        way = ""
        if is_universal_setuptools_wheel(self.wheel_filename, self.backend):
            params["bdist_wheel_universal"] = "1"
            way = ": [bdist_wheel] universal = 1"
            reason = f"{why}; retried without it, the tag asked for by the build user's distutils config"
            inferences.insert(len(inferences) - 1, Inference(TAG, "[bdist_wheel] universal = 1", reason))
        plan = self._plan(candidate.plan, params, candidate.plan.inputs, inferences)
        return Candidate(f"{candidate.label}; without {option}{way}", plan)

    # --- the setuptools of the wheel's era ----------------------------------------

    def _of_era(self, why: str, outcome: Outcome, pending: Sequence[Candidate]) -> Followup:
        failed = outcome.candidate
        era = self._era()
        used = version_of("setuptools", failed.plan.inputs)
        pinned = any(_is_setuptools(text) for text in self.build_requirements)
        if era is None or used is None or not pinned or era.setuptools == used or _is_era_plan(failed.plan):
            return Followup()
        note = f"setuptools {used} gave another wheel ({why}); trying {era.describe()}"
        retried = self._with_era(failed, era)
        rewritten = tuple(c if _is_era_plan(c.plan) else self._with_era(c, era) for c in pending)
        return Followup((retried,), rewritten, (note,))

    def _era(self) -> Era | None:
        name, _, version_text = self.generator.partition("(")
        if name.strip().lower() != "bdist_wheel" or not self.backend.startswith("setuptools"):
            return None
        version = parse_version(version_text.rstrip().removesuffix(")").strip())
        if version is None:
            return None
        return setuptools_of_era(self.index, version, self.uploaded, self.cache_dir)

    def _with_era(self, candidate: Candidate, era: Era) -> Candidate:
        plan = candidate.plan
        spec = ImageSpec.from_dict(plan.image.spec)
        image = next((i for i in self.recipe.builder_images if i.spec == spec), None)
        if image is None or not image.python or not image.platform:
            return candidate
        wheelhouse, held = self._wheelhouse(image.python, image.platform, era)
        params = {k: v for k, v in plan.parameters.items() if k not in ("pip_args", "bdist_wheel_universal")}
        inferences = [
            i
            for i in plan.inferences
            if i.field not in ("setuptools", TAG) and not i.reason.startswith("a dependency of the build held")
        ]
        added = [Inference("setuptools", str(era.setuptools), f"{ERA}: {era.describe()}"), *held]
        label = f"Python {'.'.join(image.python.split('.')[:2])}, setuptools {era.setuptools}"
        if is_universal_setuptools_wheel(self.wheel_filename, self.backend):
            way = universal_way(era.setuptools)
            params.update(way.parameters)
            added.append(way.inference())
            label += f", {way.name}"
        epoch = next((i.reason for i in plan.inferences if i.field == "SOURCE_DATE_EPOCH"), "")
        inferences[-1:-1] = added  # before SOURCE_DATE_EPOCH's, which stays last
        return Candidate(f"{label}, {epoch}" if epoch else label, self._plan(plan, params, wheelhouse, inferences))

    def _wheelhouse(self, python: str, platform: str, era: Era) -> tuple[tuple[Input, ...], list[Inference]]:
        key = (python, platform)
        if key not in self._wheelhouses:
            requires = [_pin_setuptools(text, era.setuptools) for text in self.build_requirements]
            target = PythonTarget(python, platform)
            self._wheelhouses[key] = self.resolve(requires, era.until, self.index, self.index_url, target)
        return self._wheelhouses[key]

    def _plan(
        self, plan: BuildPlan, params: dict[str, str], inputs: Sequence[Input], inferences: Sequence[Inference]
    ) -> BuildPlan:
        return self.recipe.plan(
            plan.source,
            params,
            plan.environment,
            inputs=inputs,
            outputs=plan.outputs,
            inferences=inferences,
            deviations=plan.deviations,
            image=ImageSpec.from_dict(plan.image.spec),
        )


def _is_era_plan(plan: BuildPlan) -> bool:
    return any(i.field == "setuptools" and i.reason.startswith(ERA) for i in plan.inferences)


def _is_setuptools(requirement: str) -> bool:
    try:
        return canonicalize_name(Requirement(requirement).name) == "setuptools"
    except InvalidRequirement:
        return False


def _pin_setuptools(requirement: str, version: Version) -> str:
    return distributions.pin(requirement, str(version)) if _is_setuptools(requirement) else requirement
