"""The runs worker process (`manage.py runsworker`): channels' Worker made to outlive Redis and
to stop without dropping anything.

- **Redis goes away**: channels' Worker lets an error from `receive` end its listener, and with
  it the process (rc 1, and every run it held with it). Here the listener logs it, waits (0.5 s
  doubling to 5 s) and listens again; the runs it holds carry on meanwhile.
- **SIGTERM / SIGINT** (a deploy, a scale-in): the listener stops at once (a message Redis was
  handing over stays in channels_redis's in-flight backup and goes back to the queue for
  another worker; one already taken is handed back by `RunWorkerConsumer`), the runs it holds
  drain until ECSPORTAL_DRAIN_SECONDS, and the process exits 0. A second signal changes
  nothing: the deadline is the bound.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from channels.worker import Worker

from ecsportal.runs import dispatcher

logger = logging.getLogger(__name__)

FIRST_RETRY = 0.5
LAST_RETRY = 5.0


class RunsWorker(Worker):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._stop = asyncio.Event()

    async def arun(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        checker = asyncio.ensure_future(self.application_checker())
        logger.info("runs worker: listening on %s", ", ".join(self.channels))
        listeners = [asyncio.ensure_future(self.listener(channel)) for channel in self.channels]
        try:
            await self._stop.wait()
            logger.warning("runs worker: told to stop; taking no new runs")
            for listener in listeners:
                listener.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)
            cut = await dispatcher.drain(who="runs worker")
            logger.warning("runs worker: drained (%d run(s) ended at the deadline); exiting", len(cut))
            await asyncio.sleep(self.application_checker_interval * 2)  # the consumers' last hand-backs
        finally:
            checker.cancel()
            await asyncio.gather(checker, return_exceptions=True)

    async def listener(self, channel: str) -> None:
        retry = FIRST_RETRY
        while True:
            try:
                message = await self.channel_layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting, a network blip: never a reason to exit
                logger.warning(
                    "runs worker: receiving from %s failed (%s: %s); again in %g s",
                    channel,
                    type(exc).__name__,
                    exc,
                    retry,
                )
                await asyncio.sleep(retry)
                retry = min(retry * 2, LAST_RETRY)
                continue
            retry = FIRST_RETRY
            if not message.get("type"):
                logger.warning("runs worker: a message without a type on %s, dropped", channel)
                continue
            queue = self.get_or_create_application_instance(channel, {"type": "channel", "channel": channel})
            await queue.put(message)
