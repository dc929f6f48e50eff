"""scikit-learn's data-frame detection, answered at once for the plain arrays shipml passes.

Every scikit-learn ``predict`` checks its input, and in scikit-learn 1.9 (the version
measured) that check asks narwhals twice per call (in ``check_array``, then in the
feature-name check) whether the input is a data frame or a series. narwhals answers by
looking up several attribute names with ``inspect.getattr_static``, a walk of the
class's MRO per name, and by asking every installed narwhals plugin. For one row that
is most of the call: an iris ``SVC.predict_proba`` took ~200 µs on the development
machine, ~90 µs of it this question, against ~40 µs of the model's own arithmetic; a
pipeline asks once per step.

The answer for a plain ``numpy.ndarray`` is always the same (not a frame, no feature
names), and a plain array is what the scorer passes to every model that does not take a
DataFrame. :func:`install` wraps the two functions of ``sklearn.utils.validation`` that
ask, so that an object whose type is exactly ``numpy.ndarray`` gets that answer at once
and anything else (a DataFrame, a subclass of ndarray, a list) goes to scikit-learn's
own. It installs only when both functions exist and give exactly those answers for an
array, checked at install; otherwise scikit-learn is left as it is.

Two more questions get the same answer at every call for a model being served, and
scikit-learn asks them at every call: is the estimator fitted (``check_is_fitted`` lists
the instance's attributes and looks for a trailing underscore, twice per ``predict_proba``
of an SVC), and what are its tags (``get_tags`` builds them anew from the class chain,
three times per call). A served model is loaded, checked and never refitted or re-set, so
:func:`install` also remembers, per estimator object, a "fitted" answer once scikit-learn
has given it, and the tags scikit-learn built for it the first time. An estimator found
*not* fitted is asked again every time, so its error is scikit-learn's own. Together the
shortcuts take an iris SVC's one-row ``predict_proba`` from ~44 to ~25 µs
(docs/performance.md).

It is installed where shipml serves a scikit-learn model (the scorer's warm-up in a
worker, :meth:`shipml.flavours.sklearn.SklearnModel.warm`), never in a process of the
user's: ``save_model`` does not load models through the scorer.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

log = logging.getLogger("shipml")
_installed = False


def install() -> bool:
    """Answer scikit-learn's frame questions at once for plain arrays; True if in place."""
    global _installed  # noqa: PLW0603 - once per process
    if _installed:
        return True
    try:
        from sklearn.utils import validation
    except ImportError:
        return False
    names: Callable[[Any], Any] | None = getattr(validation, "_get_feature_names", None)
    frame_like: Callable[[Any], Any] | None = getattr(validation, "_nw_into_df_or_series", None)
    if names is None or frame_like is None or not _answers_as_expected(names, frame_like):
        return False

    def feature_names(x: Any) -> Any:
        return None if type(x) is np.ndarray else names(x)

    def frame_or_series(x: Any) -> Any:
        return False if type(x) is np.ndarray else frame_like(x)

    validation._get_feature_names = feature_names
    validation._nw_into_df_or_series = frame_or_series
    _remember_per_estimator(validation)
    _installed = True
    log.debug("scikit-learn's data-frame checks answered at once for plain arrays")
    return True


def _answers_as_expected(names: Callable[[Any], Any], frame_like: Callable[[Any], Any]) -> bool:
    """Whether scikit-learn's own functions say what the shortcut says, for arrays."""
    try:
        return all(
            names(array) is None and frame_like(array) is False
            for array in (np.zeros((1, 2)), np.zeros(2, dtype=np.int64), np.array([["a"]]))
        )
    except Exception:
        return False


T = TypeVar("T")


class PerObject:
    """Answers kept per live object, by identity (an estimator's ``__eq__``, if it has one,
    never matters), each dropped when its object is collected."""

    def __init__(self) -> None:
        self._kept: dict[int, tuple[weakref.ref[Any], Any]] = {}

    def get(self, owner: Any) -> Any:
        kept = self._kept.get(id(owner))
        if kept is not None and kept[0]() is owner:
            return kept[1]
        return None

    def keep(self, owner: Any, answer: T) -> T:
        key = id(owner)
        try:
            ref = weakref.ref(owner, lambda _: self._kept.pop(key, None))
        except TypeError:  # no weak references to this type: not kept, asked every time
            return answer
        self._kept[key] = (ref, answer)
        return answer


def _remember_per_estimator(validation: Any) -> None:
    """Remember "fitted" and the tags per estimator in ``validation``'s checks (each one
    only where this scikit-learn has the function the shortcut stands in for)."""
    is_fitted: Callable[..., bool] | None = getattr(validation, "_is_fitted", None)
    tags_of: Callable[[Any], Any] | None = getattr(validation, "get_tags", None)
    if is_fitted is not None:
        fitted = PerObject()

        def remembered_is_fitted(
            estimator: Any, attributes: Any = None, all_or_any: Any = all
        ) -> bool:
            if attributes is not None:
                return is_fitted(estimator, attributes, all_or_any)
            if fitted.get(estimator):
                return True
            answer = is_fitted(estimator, attributes, all_or_any)
            return fitted.keep(estimator, True) if answer else answer

        validation._is_fitted = remembered_is_fitted
    if tags_of is not None:
        tags = PerObject()

        def remembered_tags(estimator: Any) -> Any:
            known = tags.get(estimator)
            return known if known is not None else tags.keep(estimator, tags_of(estimator))

        validation.get_tags = remembered_tags
