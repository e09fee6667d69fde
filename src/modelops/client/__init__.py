"""Typed Python client for the modelops REST API.

Finds the server and token the way the CLI does: explicit arguments, then MODELOPS_URL and
MODELOPS_TOKEN, then the running server's file and the admin token in MODELOPS_HOME.
"""

from __future__ import annotations

from modelops.client.base import ApiError, ClientBase, discover
from modelops.client.byom import ModelsMixin
from modelops.client.jobs import JobsApi
from modelops.client.lifecycle import LifecycleMixin
from modelops.client.pipelines import PipelinesMixin
from modelops.client.resources import FoundationApi

__all__ = ["ApiError", "ModelOpsClient", "discover"]


class ModelOpsClient(LifecycleMixin, ModelsMixin, PipelinesMixin, JobsApi, FoundationApi, ClientBase):
    """One client for every resource; each mixin covers one area of the API."""
