"""The one thread that touches the Engine.

Everything the service does with the engine and its store runs here, one turn at a time. A turn
is one transaction (one disk sync) for:

- **intake**: the webhooks are made durable and answered by the intake (`intake.py`), which
  wakes the worker (`wake`). On a SQLite store it writes the store's inbox file (in this
  process or in the service's front process): each turn reads the inbox's new rows
  (`store/inbox.py`), takes them into the store and processes them in the order they arrived,
  and keeps in the same transaction how far it took the inbox. On a PostgreSQL store it writes
  the shared inbound log (`store/postgres_inbox.py`), which the leader's turns read. (A worker
  given webhook requests itself, `accept`, makes the requests waiting durable in its turn and
  answers them when it commits.);
- **processing**: the events made durable are processed in the order they arrived (so the
  order of each conversation holds), for `batch_seconds` of work at most, each as a nested unit
  of work (a savepoint: one that fails is undone alone and kept as a dead letter);
- **delivery** is not the worker's: the messages those events queued are in the outbox when
  the turn commits, and the worker wakes the outbox's own thread (`dispatcher.py`, the
  `on_commit` it is given), so no vendor's answer is ever waited for here.

Between turns: **calls** (`await worker.call(fn)` runs `fn(engine)` in the order it came with
the events; the calls waiting together share one transaction, one disk sync) and **timers**
(`Engine.advance` when the next flow timer or ACD deadline is due; no /tick). The engine must
not deliver itself (`deliver=False`).
SQLite allows one writer at a time, so one thread is also the fastest way to use it. On start
the worker runs `Engine.recover` (timers, queues, events stored but not processed) before the
service takes requests.

**Several processes on one PostgreSQL store** (`Cluster`, docs/scaling.md): every process's
intake makes its webhooks' events durable; only the leader's worker processes them, reading the
shared inbound log in the order events were made durable, whichever process took them (woken by
its intake, by NOTIFY, else every `poll_interval`), and takes the calls waiting when a turn
begins into the turn's transaction. A follower bids for the lead every `poll_interval`; when it
takes it, it recovers (as on a restart) and leads. A leader whose transaction finds that another
process has taken the lead (`LeadershipLost`), or whose connections to the store are lost,
stops its engine at once and calls `on_deposed`; without one, it follows again: its next bids
open the lost connections again (`store/reconnect.py`) and, when it takes the lead again, it
recovers from the store as a restart would (docs/scaling.md, "When a connection is lost").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from flowlang.errors import FlowError
from flowlang.events import InboundEvent
from flowlang.runtime.engine import Engine, Outcome
from flowlang.service.metrics import Metrics
from flowlang.store import SqliteStore, Store
from flowlang.store.inbox import Entry, InboxReader, taken_in
from flowlang.store.inbox import Letter as InboxLetter
from flowlang.store.leadership import InboundListener, Leadership, LeadershipLost
from flowlang.store.reconnect import Reconnect, StoreUnreachable

if TYPE_CHECKING:
    from flowlang.store.postgres import PostgresStore

T = TypeVar("T")
Letter = tuple[str, dict[str, Any], str]  # source, payload, reason of a dead letter

log = logging.getLogger("flowlang.service")

# Seconds of processing in one turn of a leader at least: each turn's commit (a disk sync) and
# its look at the shared log are round trips to the server, shared by the turn's events. The
# followers' webhooks do not wait for it; the leader's own and the API's calls do.
LEADER_TURN = 0.02
ENGINE_NAME = "flowlang-engine"  # the engine's connection's application name (pg_stat_activity)


class WorkerStopped(FlowError, RuntimeError):
    """The worker has stopped (the service is shutting down); nothing was done."""


@dataclass
class Ack:
    """What became of a request's events once durable: new ones, seen before, kept aside."""

    accepted: int = 0
    duplicates: int = 0
    dead_letters: int = 0


@dataclass
class WebhookRequest:
    """A webhook request's events and dead letters, waiting to be made durable; `future` gets
    its Ack (or the store's error) on `loop`."""

    channel: str
    events: list[InboundEvent]
    letters: list[Letter]
    at: datetime
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Ack]


@dataclass
class _Call:
    fn: Callable[[Engine], Any]
    settle: Callable[[Any], None]  # with the result, or the exception raised


@dataclass
class _Pending:
    event: InboundEvent  # durable, not processed yet
    since: float  # when it was made durable (perf_counter)


@dataclass(frozen=True)
class Staged:
    """A row of the store's inbox, durable and not in the store yet: an event or a letter."""

    seq: int
    event: InboundEvent | None
    letter: InboxLetter | None

    @staticmethod
    def of(seq: int, entry: Entry) -> Staged:
        """The inbox row `seq`; an event that no longer reads is kept as a letter, not lost."""
        if entry.letter is not None:
            return Staged(seq, None, entry.letter)
        try:
            return Staged(seq, InboundEvent.model_validate(entry.payload), None)
        except ValueError as exc:
            why = f"an inbox row that is not an inbound event: {exc}"
            return Staged(
                seq, None, InboxLetter(entry.channel, entry.payload, why, datetime.now(UTC))
            )


@dataclass
class _Taken:
    row: Staged
    since: float


@dataclass
class _Turn:
    """What a try at a turn's transaction did (`Worker._commit`)."""

    acks: list[Ack] = field(default_factory=list)
    processed: list[tuple[_Pending | _Taken, Outcome | None]] = field(default_factory=list)
    taken: list[_Taken] = field(default_factory=list)
    popped: list[_Pending | _Taken] = field(default_factory=list)  # from `_work`
    accepted: list[_Pending] = field(default_factory=list)  # made durable in it
    results: list[Any] = field(default_factory=list)
    calling: bool = False  # the calls have begun to run


@dataclass
class _Stop:
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Wake:
    """Another process made events durable: look at the inbound log now."""


@dataclass
class Cluster:
    """This process's part among several sharing one PostgreSQL store."""

    store: PostgresStore
    leadership: Leadership
    poll_interval: float = 0.5  # seconds between bids (follower) or looks at the log (leader)
    listener: InboundListener | None = None


Role = Literal["single", "leader", "follower", "deposed"]


class UtcClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class Worker:
    """The engine's thread (see the module doc). `start` recovers and starts it; `stop` ends it
    after the job in hand (events made durable and not processed yet are recovered next start).
    """

    def __init__(
        self,
        engine: Engine,
        store: Store,
        metrics: Metrics,
        *,
        on_commit: Callable[[], None] = lambda: None,
        max_batch: int = 256,
        batch_seconds: float = 0.005,
        cluster: Cluster | None = None,
        on_deposed: Callable[[], None] | None = None,
        inbox: InboxReader | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.metrics = metrics
        self.on_commit = on_commit  # after a commit that may have queued messages
        self.max_batch = max_batch
        self.batch_seconds = batch_seconds
        self.inbox = inbox  # (SQLite) the store's inbox, whose new rows each turn takes
        self._seen = 0  # the last inbox row read into `_work`
        self._woken = False  # a wake-up is in the queue already
        self._inbox: queue.SimpleQueue[WebhookRequest | _Call | _Stop | _Wake] = queue.SimpleQueue()
        self._work: deque[_Pending | _Taken | _Call] = deque()
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._stopped = False
        self._closing = threading.Lock()  # nothing is queued once the loop has stopped
        self._next_gauges = 0.0
        self.cluster = cluster
        self.on_deposed = on_deposed
        self._role: Role = "single" if cluster is None else "follower"
        # Told each change of role, on the worker's thread (the engine process of `flowlang
        # serve` tells its front whether it leads: `engine_main.py`).
        self.on_role: Callable[[Role], None] = lambda _role: None
        # (A leader) Whether a wake-up was sent that has not reached the queue yet, taking it
        # (the front process's pipe: `engine_main.py`).
        self.wake_pending: Callable[[], bool] = lambda: False
        # Called after each recovery, on the worker's thread (the engine process of `flowlang
        # serve` sets aside what it has loaded from the garbage collector: `collector.py`).
        self.on_recovered: Callable[[], None] = lambda: None
        self._more = False  # (leader) events left in the inbound log after the last turn
        self._next_look = 0.0  # (leader) when to look at the inbound log again, unwoken
        self._last_turn = 0  # (leader) how many events its last turn processed
        self._next_bid = 0.0
        self._reconnect = Reconnect(ENGINE_NAME)  # (cluster) the engine's connection
        self._led = False  # (cluster) it has led before
        metrics.watch_backlog(self.backlog)
        engine.listen(self._heard)

    @property
    def role(self) -> Role:
        """single (its own store), leader, follower or deposed (sharing a PostgreSQL store)."""
        return self._role

    @role.setter
    def role(self, role: Role) -> None:
        if role != self._role:
            self._role = role
            self.on_role(role)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Recover (on the worker thread) and start taking jobs; raises what recovery raised."""
        self._thread = threading.Thread(target=self._run, name="flowlang-engine", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the job in hand and stop; calls not started fail with WorkerStopped. A
        leader gives up the lead (another process takes it at once)."""
        if self._thread is not None and self._thread.is_alive():
            stop = _Stop()
            self._inbox.put(stop)
            stop.done.wait(timeout)
            self._thread.join(timeout)
        if self.inbox is not None:
            self.inbox.close()
        if self.cluster is not None:
            if self.cluster.listener is not None:
                self.cluster.listener.stop()
            self.cluster.leadership.close()

    @property
    def alive(self) -> bool:
        alive = self._thread is not None and self._thread.is_alive() and not self._stopped
        return alive and not self.deposed

    @property
    def deposed(self) -> bool:
        """(Cluster) Another process took the lead from this one: its engine has stopped."""
        return self.role == "deposed"

    def backlog(self) -> int:
        """Jobs not done yet: events durable and not processed, calls, requests to commit."""
        return len(self._work) + self._inbox.qsize()

    # ------------------------------------------------------------------ the loop's clients
    async def accept(
        self, channel: str, events: list[InboundEvent], letters: list[Letter], at: datetime
    ) -> Ack:
        """Make a request's events and dead letters durable (committed with other requests
        waiting); they are processed after. Raises what the store raised (answer 5xx)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Ack] = loop.create_future()
        self._put(WebhookRequest(channel, events, letters, at, loop, future))
        return await future

    async def call(self, fn: Callable[[Engine], T]) -> T:
        """Run `fn(engine)` on the worker and return what it returns (or raise what it raised).

        This is how the service's endpoints act on the engine (an agent's action, a report of
        the live state): `outcome = await worker.call(lambda e: e.handle(agent_event))`. The
        call runs after every event accepted before it has been processed, between two turns,
        inside one transaction with the other calls waiting (each a nested unit of work; the
        answer comes once that transaction has committed): no other job runs beside it, so `fn`
        may read and change the engine and the store freely, but must not block (no network, no
        waiting on the event loop), since events wait for it. `fn` runs on the worker's thread:
        listeners it triggers (`engine.listen`) are called there too and must hand over to the
        event loop with `loop.call_soon_threadsafe`.
        Raises WorkerStopped when the service is shutting down.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put(_Call(fn, _settler(loop, future)))
        return await future

    def wake(self) -> None:
        """(Any thread) Rows were just made durable in the store's inbox: take them now. A
        worker that has stopped leaves them in the inbox, for the next start."""
        if not self._woken:  # one wake-up in the queue is enough: each turn reads them all
            self._woken = True
            self._inbox.put(_Wake())

    def _put(self, item: WebhookRequest | _Call | _Wake) -> None:
        with self._closing:
            if not self.alive:
                raise WorkerStopped("the engine worker is not running")
            self._inbox.put(item)

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        try:
            if self.cluster is None:
                self._recover()
                if self.inbox is not None:
                    assert isinstance(self.store, SqliteStore)
                    self._seen = taken_in(self.store.db, self.inbox.id)
            else:
                self._bid()
        except BaseException as exc:
            self._start_error = exc
            self._stopped = True
            self._started.set()
            return
        self._started.set()
        stop: _Stop | None = None
        while stop is None:
            if self.deposed:
                if self.on_deposed is not None:  # the host stops the process
                    break
                self._rejoin()
            stop = self._cycle(block=not self._work and not self._more)
            if not self.deposed:
                self._due()
        with self._closing:  # what was queued before is drained; nothing comes after
            self._stopped = True
        self._drain_after_stop()
        if stop is not None:
            stop.done.set()
        if self.deposed and self.on_deposed is not None:
            self.on_deposed()

    def _bid(self) -> None:
        """(Cluster) Take the lead if no process holds it; then recover and lead."""
        assert self.cluster is not None
        self._next_bid = time.monotonic() + self.cluster.poll_interval
        store = self.cluster.store
        store.announce_inbound = True
        try:
            store.ensure_open(self._reconnect)  # (a loss and the attempts are logged there)
        except StoreUnreachable:
            return
        began = time.perf_counter()
        epoch = self.cluster.leadership.try_lead()
        if epoch is None:
            return
        store.fence, store.announce_inbound = epoch, False
        self.role = "leader"
        try:
            with store.transaction():  # in the log before what the recovery decides
                data = {"epoch": epoch, "url": self.cluster.leadership.advertise_url}
                store.append_event("lead_taken", datetime.now(UTC), None, data)
        except store.dialect.errors as exc:  # (a lost connection: opened at the next bid)
            log.warning("the lead was taken and given back: the store failed (%s)", exc)
            self._follow()
            return
        if self._led:  # what it held when it lost the lead may have changed since
            self.engine.forget()
        self._led = True
        self._recover()
        self.cluster.listener = InboundListener(
            store.path, self.cluster.leadership.schema, self.wake
        )
        self._more = True
        log.warning(
            "this process leads the engine (epoch %d): recovered in %.2f s",
            epoch,
            time.perf_counter() - began,
        )

    def _depose(self, exc: BaseException) -> None:
        """(Cluster) Another process leads now: stop the engine, take no decision more. A
        single process (its own store) has no lead to lose: the job that raised failed, as
        any other, and the engine goes on."""
        if self.cluster is None:
            log.error("engine worker: a job failed: %s (no other process shares the store)", exc)
            return
        log.error("engine stopped: %s", exc)
        self.role = "deposed"
        self.cluster.store.fence = None  # webhooks still made durable, for the leader
        self.cluster.store.announce_inbound = True

    def _rejoin(self) -> None:
        """(Cluster) Deposed, with no `on_deposed` to stop the process: a follower again. The
        calls waiting are refused; the events taken and not processed stay in the log."""
        refused = WorkerStopped("this process no longer runs the engine")
        for item in self._work:
            if isinstance(item, _Call):
                item.settle(refused)
        self._work.clear()
        self._more = False
        self._follow()
        assert self.cluster is not None
        # Lost, or soon found so: the next bid opens a new one (a deposition by another
        # process costs one connect more).
        with contextlib.suppress(Exception):
            self.cluster.store.db.close()
        log.warning("this process follows again: it bids for the lead when the store answers")

    def _follow(self) -> None:
        """(Cluster) Give up the lead (kept or not) and bid again at the next poll."""
        assert self.cluster is not None
        if self.cluster.listener is not None:
            self.cluster.listener.stop()
            self.cluster.listener = None
        self.cluster.leadership.resign()
        store = self.cluster.store
        store.fence, store.announce_inbound = None, True
        self.role = "follower"
        self._next_bid = time.monotonic() + self.cluster.poll_interval

    def _recover(self) -> None:
        outcomes = self.engine.recover(datetime.now(UTC))
        self.on_recovered()
        for outcome in outcomes:
            self._count(outcome)
        self.on_commit()
        if outcomes:
            log.info("recovered: %d outcome(s) after the restart", len(outcomes))

    def _cycle(self, block: bool) -> _Stop | None:
        """One turn: the requests waiting made durable and events processed, in one
        transaction; then the answers, and a call if one is next."""
        items: list[WebhookRequest | _Call | _Stop | _Wake] = []
        try:
            if block:
                items.append(self._inbox.get(timeout=self._sleep_for()))
            while len(items) < self.max_batch:
                items.append(self._inbox.get_nowait())
        except queue.Empty:
            pass
        intakes = [i for i in items if isinstance(i, WebhookRequest)]
        stop = next((i for i in items if isinstance(i, _Stop)), None)
        if self.inbox is not None and stop is None:
            # Every turn, not only when woken: a call made after a webhook's acknowledgement
            # then comes after its events, whichever process acknowledged it.
            self._woken = False
            self._guarded(self._read_inbox)
        elif any(isinstance(i, _Wake) for i in items):
            self._woken = False  # (a leader) before it reads the log: no commit goes unseen
        process = stop is None and self.role in ("single", "leader")
        # A leader looks at the shared log when there may be something new in it (its own
        # intake, a NOTIFY, events left) or every poll interval, not before each API call: an
        # empty turn still costs a commit.
        look = (
            self.role == "leader"
            and process
            and (
                self._more
                or time.monotonic() >= self._next_look
                or any(isinstance(i, WebhookRequest | _Wake) for i in items)
            )
        )
        calling = any(isinstance(i, _Call) for i in items)
        if calling and not look and process and self.role == "leader":
            # A call made after a webhook's acknowledgement comes after its events: the wake
            # sent before that answer may still be on its way to the queue (asked first: a
            # wake-up it finds taken is in the queue by then).
            look = self.wake_pending() or self._woken
        pending = bool(self._work) and isinstance(self._work[0], _Pending | _Taken) and stop is None
        turn = bool(intakes or look or pending)
        for item in items:
            if isinstance(item, _Call):
                self._work.append(item)
        # A leader's turn takes the calls waiting into its transaction, after its events: one
        # commit (a disk sync, a round trip) for both. (Its queue holds no events: they are in
        # the shared log.)
        joined = self._calls(stop) if turn and self.role == "leader" else []
        if turn:
            self._commit(intakes, process=process, calls=joined)
        calls = self._calls(stop)
        if calls:
            self._run_calls(calls)
        return stop

    def _calls(self, stop: _Stop | None) -> list[_Call]:
        """The calls at the head of the work waiting (none when stopping)."""
        calls: list[_Call] = []
        while stop is None and self._work and isinstance(self._work[0], _Call):
            call = self._work.popleft()
            assert isinstance(call, _Call)
            calls.append(call)
            if len(calls) >= self.max_batch:
                break
        return calls

    def _run_calls(self, calls: list[_Call]) -> None:
        """Run the calls waiting, in order, in one transaction (one disk sync for all, as a
        turn's events share one), and settle each once it has committed. A call that raises
        keeps what it wrote, as a call committed alone would (a refusal is logged); one whose
        database statement failed is undone alone. When the commit fails, every call gets its
        error."""
        if self.role == "follower":  # the API is forwarded to the leader (app.py)
            for call in calls:
                call.settle(WorkerStopped("this process does not run the engine"))
            return
        results: list[Any] = []
        try:
            with self.engine.group():
                if len(calls) == 1:  # its own transaction is its unit: no savepoint to wait for
                    results.append(_result_of(calls[0], self.engine, self.store.dialect.errors))
                else:
                    results.extend(self._nested_call(call) for call in calls)
        except Exception as exc:  # nothing was committed
            for call in calls:
                call.settle(exc)
            if isinstance(exc, LeadershipLost):
                self._depose(exc)
            self.on_commit()
            return
        for call, result in zip(calls, results, strict=True):
            call.settle(result)
        self.on_commit()

    def _nested_call(self, call: _Call) -> Any:
        """A call's result (or the exception it raised), run as a nested unit of work."""
        errors = self.store.dialect.errors
        try:
            with self.store.transaction():
                return _result_of(call, self.engine, errors)
        except errors as exc:
            self.engine.rolled_back()  # what the engine did in it was undone too
            return exc

    def _read_inbox(self) -> None:
        """The inbox's rows appended since the last read, to take after the work waiting."""
        assert self.inbox is not None
        rows = self.inbox.after(self._seen)
        if rows:
            since = time.perf_counter()
            self._work.extend(_Taken(Staged.of(seq, entry), since) for seq, entry in rows)
            self._seen = rows[-1][0]

    def _commit(
        self, intakes: list[WebhookRequest], process: bool, calls: list[_Call] | None = None
    ) -> None:
        """Make `intakes` durable and process the events waiting (for `batch_seconds` at
        most), then run `calls`, in one transaction: one disk sync for all. Each event and
        each call is a nested unit of work (a savepoint): an event that fails is undone alone
        and kept as a dead letter, a call as in `_run_calls`. The messages they queued are
        handed to the outbox's thread once the transaction has committed, and the calls are
        answered then."""
        calls = calls or []
        # A leader's events end their units without waiting for the server (a round trip
        # less each, `PostgresStore.deferring`). When a statement of theirs fails, which event
        # it was is not known: the turn is undone whole, before any call has run (the calls
        # wait for the events' statements first), and run again event by event, where the
        # failing one is undone alone and kept as a dead letter.
        turn = _Turn()
        defer = self.role == "leader" and process
        try:
            try:
                self._attempt(turn, intakes, process, calls, defer)
            except Exception as exc:
                lost = isinstance(exc, LeadershipLost) or self.store.dialect.closed
                if not defer or turn.calling or lost:  # (a lost connection: nothing to redo)
                    raise
                log.warning(
                    "a statement failed in a turn whose events did not wait for the server "
                    "(%s): the turn is undone and run again, event by event",
                    exc,
                )
                self._work.extendleft(reversed(turn.popped))  # (a leader accepts none)
                turn = _Turn()
                self._attempt(turn, intakes, process, calls, defer=False)
        except Exception as exc:  # the store cannot be written: nothing was kept
            log.exception(
                "cannot commit %d webhook request(s) and %d event(s); the events stay in the "
                "inbound log for the next start",
                len(intakes),
                len(turn.processed),
            )
            if isinstance(exc, LeadershipLost):  # before the 500s: /ready says so after them
                self._depose(exc)
            answer([(intake.loop, intake.future, exc) for intake in intakes])
            for call in calls:
                call.settle(exc)
            if self._put_back(turn.popped, turn.accepted):
                time.sleep(0.5)
            return
        processed, acks, results = turn.processed, turn.acks, turn.results
        done = time.perf_counter()
        for pending, outcome in processed:
            self.metrics.processing.observe(done - pending.since)
            if outcome is not None:
                self._count(outcome)
        settle_requests(self.metrics, intakes, acks)
        for call, result in zip(calls, results, strict=True):
            call.settle(result)
        if processed or calls:
            self.on_commit()

    def _attempt(
        self,
        turn: _Turn,
        intakes: list[WebhookRequest],
        process: bool,
        calls: list[_Call],
        defer: bool,
    ) -> None:
        """One try at `_commit`'s transaction, what it did kept in `turn`."""
        with self.engine.group():  # listeners (agents' streams) hear after its commit
            turn.acks = self._turn(
                intakes, process, turn.processed, turn.taken, turn.popped, turn.accepted, defer
            )
            if calls:
                if defer and self.cluster is not None:
                    self.cluster.store.confirm()
                turn.calling = True  # (a failure from here on is not a deferred event's)
                turn.results.extend(self._nested_call(call) for call in calls)

    def _put_back(self, popped: list[_Pending | _Taken], accepted: list[_Pending]) -> bool:
        """After a turn whose commit failed: the events it accepted are not stored (the
        vendor, answered 5xx, sends them again), so they leave `_work`; those it took from
        `_work` that were durable before it (inbox rows, events stored by an earlier turn)
        go back to its head, in order, to be tried again. Whether any went back."""
        lost = {id(pending) for pending in accepted}
        if lost:
            kept = [work for work in self._work if id(work) not in lost]
            self._work.clear()
            self._work.extend(kept)
        back = [pending for pending in popped if id(pending) not in lost]
        self._work.extendleft(reversed(back))
        return bool(back)

    def _turn(
        self,
        intakes: list[WebhookRequest],
        process: bool,
        processed: list[tuple[_Pending | _Taken, Outcome | None]],
        taken: list[_Taken],
        popped: list[_Pending | _Taken],
        accepted: list[_Pending],
        defer: bool = False,
    ) -> list[Ack]:
        """A turn's work inside its transaction: the requests' events made durable (those
        waiting in `_work` into `accepted`), the events waiting processed (into `processed`;
        those taken from `_work` into `popped`, the inbox rows among them into `taken`); the
        acks."""
        acks: list[Ack] = []
        if self.cluster is None:
            acks = [self._accept(intake, accepted) for intake in intakes]
        budget = time.perf_counter() + (
            max(self.batch_seconds, LEADER_TURN) if self.cluster else self.batch_seconds
        )
        if process and self.cluster is not None:
            processed.extend(self._process_stored(self.cluster.store, budget, defer))
        while process and self._work and isinstance(self._work[0], _Pending | _Taken):
            pending = self._work.popleft()
            assert isinstance(pending, _Pending | _Taken)
            popped.append(pending)
            if isinstance(pending, _Taken):
                taken.append(pending)
                processed.append((pending, self._take(pending.row)))
            else:
                processed.append((pending, self.engine.process_inbound(pending.event)))
            if time.perf_counter() >= budget:
                break
        if taken:
            assert isinstance(self.store, SqliteStore) and self.inbox is not None
            self.store.took_from_inbox(self.inbox.id, taken[-1].row.seq)
        if self.cluster is not None:
            # Last: the locks of the events' conversations, which another process's intake
            # of the same conversation waits for, are then held for the commit only.
            acks = self._accept_all(intakes)
            if self.role == "leader":  # a follower's loop waits for work: the log is not its
                self._more = self._more or any(ack.accepted for ack in acks)
        return acks

    def _take(self, row: Staged) -> Outcome | None:
        """An inbox row into the store: an event stored and processed (a duplicate when its id
        is stored already), a letter kept as a dead letter."""
        if row.letter is not None:
            letter = row.letter
            self.store.keep_unreadable(letter.source, letter.payload, letter.reason, letter.at)
            return None
        assert row.event is not None
        return self.engine.handle(row.event)

    def _process_stored(
        self, store: PostgresStore, budget: float, defer: bool = False
    ) -> list[tuple[_Pending | _Taken, Outcome | None]]:
        """(Cluster leader) The events of the shared inbound log not processed yet, in order,
        for `budget` at most; `_more` says whether some are left. `defer`: their customers
        are asked for together first, and their units end without waiting for the server
        (`PostgresStore.deferring`); else each customer is asked for with the end of the unit
        before."""
        since = time.perf_counter()
        assert self.cluster is not None
        self._next_look = time.monotonic() + self.cluster.poll_interval
        # As many as the last turn had time for, and some: the rest are read again next turn.
        limit = min(self.max_batch, max(16, 2 * self._last_turn))
        rows = store.next_inbound(limit)
        processed: list[tuple[_Pending | _Taken, Outcome | None]] = []
        if defer:
            store.look_up([sender for sender in map(self._sender, rows) if sender is not None])
        with store.deferring() if defer else contextlib.nullcontext():
            for n, payload in enumerate(rows):
                event = InboundEvent.model_validate(payload)
                if not defer and n + 1 < len(rows):  # asked for with the end of this unit
                    sender = self._sender(rows[n + 1])
                    if sender is not None:
                        store.read_ahead(*sender)
                processed.append((_Pending(event, since), self.engine.process_inbound(event)))
                if time.perf_counter() >= budget:
                    break
        self._last_turn = len(processed)
        self._more = len(processed) < len(rows) or len(rows) == limit
        return processed

    def _sender(self, payload: dict[str, Any]) -> tuple[str, str, str | None] | None:
        """An inbound event's sender as the store looks them up: the identity's kind, the id,
        the phone (None: the event names no sender)."""
        channel, sender = payload.get("channel"), payload.get("sender_id")
        if not (isinstance(channel, str) and isinstance(sender, str) and sender):
            return None
        phone = payload.get("sender_phone")
        kind = self.engine.ports.identity_kind(channel)
        return kind, sender, phone if isinstance(phone, str) else None

    def _accept_all(self, intakes: list[WebhookRequest]) -> list[Ack]:
        """(Cluster) Every request's events stored together (one round trip), read back from
        the shared log in its order; their dead letters kept."""
        stored = iter(
            self.store.accept_inbounds(
                [
                    (event.channel, event.event_id, event.model_dump(mode="json"))
                    for intake in intakes
                    for event in intake.events
                ]
            )
        )
        acks = []
        for intake in intakes:
            new = sum(next(stored) for _ in intake.events)
            acks.append(Ack(new, len(intake.events) - new, len(intake.letters)))
            for source, payload, reason in intake.letters:
                self.store.keep_unreadable(source, payload, reason, intake.at)
        return acks

    def _accept(self, intake: WebhookRequest, accepted: list[_Pending]) -> Ack:
        """(No cluster) A request's events stored, and waiting in `_work` (also in
        `accepted`); its dead letters kept. (The engine process of `flowlang serve` takes
        webhooks this way, when posted to it rather than to its front.)"""
        ack = Ack(dead_letters=len(intake.letters))
        since = time.perf_counter()
        for event in intake.events:
            payload = event.model_dump(mode="json")
            if self.store.accept_inbound(event.channel, event.event_id, payload):
                ack.accepted += 1
                accepted.append(_Pending(event, since))
                self._work.append(accepted[-1])
            else:
                ack.duplicates += 1
        for source, payload, reason in intake.letters:
            self.store.keep_unreadable(source, payload, reason, intake.at)
        return ack

    def _count(self, outcome: Outcome) -> None:
        if outcome.dead_lettered:
            self.metrics.dead_letters.labels("event").inc()

    def _heard(self, event: Mapping[str, Any]) -> None:
        """A message the channel policy (or the flow's window guard) kept from the outbox:
        counted by its status (blocked, skipped, recorded). Messages let through are counted
        by the outbox's thread, once the vendor has taken them (sent) or not."""
        if event["kind"] == "blocked":
            self.metrics.deliveries.labels(str(event.get("status") or "blocked")).inc()

    def _sleep_for(self) -> float:
        """Seconds until the next timer is due or the gauges are read again (a follower: until
        its next bid; a leader looks at the shared inbound log every `poll_interval`)."""
        if self.role == "follower":
            return max(self._next_bid - time.monotonic(), 0.001)
        wait = max(0.0, self._next_gauges - time.monotonic())
        if self.cluster is not None:
            wait = min(wait, self.cluster.poll_interval)
        deadline = self.engine.next_deadline()
        if deadline is not None:
            wait = min(wait, max(0.0, (deadline - datetime.now(UTC)).total_seconds()))
        return max(wait, 0.001)

    def _due(self) -> None:
        """Fire timers that are due; read the queue gauges twice a second. A follower bids for
        the lead instead."""
        if self.role == "follower":
            if time.monotonic() >= self._next_bid:
                self._guarded(self._bid)
            return
        now = datetime.now(UTC)
        deadline = self.engine.next_deadline()
        if deadline is not None and deadline <= now:
            self._guarded(lambda: self._advance(now))
            self.on_commit()
        if time.monotonic() >= self._next_gauges:
            self._next_gauges = time.monotonic() + 0.5
            self._guarded(self._queue_gauges)
            if self.cluster is not None and not self.cluster.leadership.holds():
                self._depose(LeadershipLost("the connection holding the lead was lost"))
            elif self.cluster is not None and self.cluster.store.dialect.closed:
                # It cannot write again: holding the lead would stall every process sharing it.
                self._depose(LeadershipLost("the store's connection was lost"))

    def _advance(self, now: datetime) -> None:
        for outcome in self.engine.advance(now):
            self._count(outcome)

    def _queue_gauges(self) -> None:
        for name, count in self.engine.acd.waiting_counts().items():
            self.metrics.queue_waiting.labels(name).set(count)

    def _guarded(self, job: Callable[[], None]) -> None:
        try:
            job()
        except LeadershipLost as exc:
            self._depose(exc)
        except Exception:  # the worker outlives a failing job; the engine keeps what it can
            log.exception("engine worker: a job failed")

    def _drain_after_stop(self) -> None:
        stopped = WorkerStopped("the service is shutting down")
        intakes: list[WebhookRequest] = []
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, WebhookRequest):
                intakes.append(item)  # still made durable and answered: the request made it in
            elif isinstance(item, _Call):
                item.settle(stopped)
        if intakes:
            self._commit(intakes, process=False)
        if self.inbox is not None:  # what it has not processed: in the store, for the next start
            assert isinstance(self.store, SqliteStore)
            try:
                self.store.take_inbox()
            except Exception:  # still in the inbox, taken at the next start
                log.exception("cannot take the inbox's rows into the store before stopping")
        for waiting in self._work:
            if isinstance(waiting, _Call):
                waiting.settle(stopped)


def _result_of(call: _Call, engine: Engine, errors: tuple[type[Exception], ...] = ()) -> Any:
    """What a call returned, or the exception it raised (what it wrote stays); the store's own
    errors are raised (its unit of work is undone)."""
    try:
        return call.fn(engine)
    except errors:
        raise
    except Exception as exc:
        return exc


def settle_requests(metrics: Metrics, requests: list[WebhookRequest], acks: list[Ack]) -> None:
    """Answer requests made durable with their acks, and count their events."""
    answer([(r.loop, r.future, ack) for r, ack in zip(requests, acks, strict=True)])
    for request, ack in zip(requests, acks, strict=True):
        metrics.inbound.labels(request.channel).inc(ack.accepted)
        if ack.duplicates:
            metrics.duplicates.labels(request.channel).inc(ack.duplicates)
        if ack.dead_letters:
            metrics.dead_letters.labels("payload").inc(ack.dead_letters)


def answer(
    answers: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Ack], Ack | BaseException]],
) -> None:
    """Settle the requests' futures: one hand-over to each event loop for all of them."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Ack], Any]]] = {}
    for loop, future, value in answers:
        by_loop.setdefault(loop, []).append((future, value))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, value in settled:
        if future.done():  # the request went away
            continue
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)


def _settler(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> Callable[[Any], None]:
    """A function the worker calls with a result (or an exception) for `future`."""

    def settle_now(value: Any) -> None:
        if future.done():  # the request went away
            return
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)

    def settle(value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(settle_now, value)

    return settle
