"""Reading a completed Ironclad workflow into an approval: the intake's one activity.

The API never calls Ironclad; this activity does. It reads the workflow (its attributes carry
the contract's terms) and maps it with the configured mapping. A workflow that cannot give an
approval (unknown to Ironclad, not completed, a term missing or invalid) is answered as a
refusal naming the Ironclad field, which the API keeps as a dead letter with the reason;
transient failures (Ironclad unreachable, ``5xx``, ``429``) raise, for Temporal to retry.
"""

from __future__ import annotations

from temporalio import activity

from activities.base import StepActivities
from c2c.ironclad_mapping import MappingError, load_mapping, to_contract
from c2c.logs import get_logger
from connectors.ironclad import IroncladClient
from domain.errors import BusinessError
from domain.ironclad import READ_IRONCLAD_APPROVAL, IroncladIntakeRequest, IroncladIntakeResult

log = get_logger("c2c.activities")


class IroncladIntakeActivities(StepActivities):
    """The intake's activity; its Ironclad client comes from the settings."""

    _ironclad: IroncladClient | None = None

    @property
    def ironclad(self) -> IroncladClient:
        if self._ironclad is None:
            self._ironclad = IroncladClient.from_settings(self.settings)
        return self._ironclad

    @activity.defn(name=READ_IRONCLAD_APPROVAL)
    async def read_ironclad_approval(self, request: IroncladIntakeRequest) -> IroncladIntakeResult:
        """Read the workflow from Ironclad and map it to an approval, or say why it cannot be.

        Raises:
            ValueError: The mapping file is unusable (a configuration to fix; retried).
            TransientError: Ironclad did not answer; retried.
        """
        # First, so that a mapping to fix is retried until it is fixed, not a refusal.
        mapping = load_mapping(self.settings.ironclad_mapping_file)
        try:
            workflow = await self.ironclad.workflow(request.workflow_id)
        except BusinessError as exc:
            rejection = exc.rejection
            reason = (
                f"payload.workflowID: Ironclad refused workflow {request.workflow_id}: "
                f"{rejection.code}: {rejection.message}"
            )
            log.warning("ironclad workflow refused", reason=reason)
            return IroncladIntakeResult(field="payload.workflowID", reason=reason)
        try:
            approved = to_contract(workflow, mapping)
        except MappingError as exc:
            log.warning("ironclad workflow refused", field=exc.field, reason=str(exc))
            return IroncladIntakeResult(field=exc.field or None, reason=str(exc))
        return IroncladIntakeResult(approved=approved)
