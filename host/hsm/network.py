"""The network HSM client: payShield-style host commands over TCP (keys/hsm_wire.py).

A small pool of connections, each carrying many commands at once: every command gets a header
unused on its connection and a reader task hands each answer to the waiter of its header. Every
call has a deadline; failures (refused connect, broken link, no answer in time) count towards a
circuit breaker, and while the breaker is open a call fails at once with HsmUnavailable, so a
dead HSM costs the terminal a quick 96, not a stalled event loop.
"""

from __future__ import annotations

import itertools

import attrs
import structlog
import trio

from host.hsm import HsmUnavailable
from keys import hsm_wire as wire
from keys.errors import KeysError, KeyUsageError, MacError, PinError
from keys.hsm import TDEA_WORKING_KEYS, DukptSource, TrackBlock, pin_working_key
from keys.tokens import KeyToken, KeyType

log = structlog.get_logger("poshost.hsm")

# HSM error codes -> the exception the host's steps already map to a response code.
_PIN_ERRORS = frozenset({"20", "22", "23", "24"})
_KEY_ERRORS = frozenset({"04", "10", "11", "12", "13"})


def _g0(source: DukptSource, dest: KeyToken, block: bytes, pan: str) -> str:
    """G0 for a TDES BDK (format 0 under the X9.24-1 PIN key) or an AES BDK (the X9.24-3
    working key the device used: format 0 under a TDEA key, format 4 under an AES key)."""
    bdk = source.bdk
    if bdk.key_type is KeyType.BDK:
        src_fmt = 0 if source.fmt is None else source.fmt
        return wire.g0_translate_dukpt(
            bdk.to_text(), dest.to_text(), bytes(source.ksn), block, src_fmt, 0, pan
        )
    if bdk.key_type is not KeyType.BDK_AES:
        raise KeyUsageError(f"DUKPT derivation needs a BDK/BDK_AES key, not a {bdk.key_type.name}")
    working_key = pin_working_key(source.working_key)
    src_fmt = source.fmt
    if src_fmt is None:
        src_fmt = 0 if working_key in TDEA_WORKING_KEYS else 4
    return wire.g0_translate_dukpt(
        bdk.to_text(), dest.to_text(), bytes(source.ksn), block, src_fmt, 0, pan,
        working_key.name,
    )  # fmt: skip


def _error(command: str, code: str) -> KeysError:
    text = f"HSM answered {command} with error {code}"
    if code in _PIN_ERRORS:
        return PinError(text)
    if code in _KEY_ERRORS:
        return KeyUsageError(text)
    if command in ("M6", "M8"):
        return MacError(text)
    return KeysError(text)


@attrs.define
class Breaker:
    """Closed until ``failures`` calls in a row fail; then open for ``cooldown`` seconds (every
    call fails at once); then one call at a time may try (half-open) until one succeeds."""

    failures: int
    cooldown: float
    _count: int = 0
    _open_until: float = 0.0
    _probing: bool = False

    @property
    def is_open(self) -> bool:
        return self._count >= self.failures

    def admit(self) -> bool:
        if not self.is_open:
            return True
        if trio.current_time() < self._open_until or self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        if self.is_open:
            log.warning("hsm_breaker_closed")
        self._count = 0
        self._probing = False

    def release(self) -> None:
        """A probe that ended without a verdict (its caller was cancelled): let another try."""
        self._probing = False

    def failure(self, why: str) -> None:
        was_open = self.is_open
        self._count += 1
        self._probing = False
        if self.is_open:
            self._open_until = trio.current_time() + self.cooldown
            if not was_open:
                log.error("hsm_breaker_open", why=why, cooldown=self.cooldown)


@attrs.define(eq=False)
class _Connection:
    """One TCP connection and the waiters of the commands in flight on it."""

    stream: trio.SocketStream
    waiters: dict[str, trio.MemorySendChannel] = attrs.field(factory=dict)
    send_lock: trio.Lock = attrs.field(factory=trio.Lock)
    headers: itertools.count = attrs.field(factory=itertools.count)
    closed: bool = False

    def next_header(self) -> str:
        for _ in range(10_000):
            header = f"{next(self.headers) % 10_000:04d}"
            if header not in self.waiters:
                return header
        raise HsmUnavailable("10,000 commands in flight on one HSM connection")

    def fail_all(self) -> None:
        self.closed = True
        for channel in self.waiters.values():
            channel.close()
        self.waiters.clear()


class NetworkHSM:
    """The async HSM interface over a payShield-style TCP protocol."""

    def __init__(
        self,
        address: str,
        port: int,
        *,
        connections: int = 2,
        timeout: float = 2.0,
        connect_timeout: float = 1.0,
        breaker_failures: int = 3,
        breaker_cooldown: float = 2.0,
        expected_lmk: str | None = None,
    ) -> None:
        self.address, self.port = address, port
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.expected_lmk = expected_lmk
        self.breaker = Breaker(breaker_failures, breaker_cooldown)
        self._slots: list[_Connection | None] = [None] * max(1, connections)
        self._connecting = [trio.Lock() for _ in self._slots]
        self._turn = itertools.count()
        self._nursery: trio.Nursery | None = None

    def __repr__(self) -> str:
        return f"NetworkHSM({self.address}:{self.port})"

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Hold the nursery the connections' reader tasks run in, until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._check_lmk)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            for conn in self._slots:
                if conn is not None:
                    conn.fail_all()
                    with trio.CancelScope(shield=True):
                        await conn.stream.aclose()

    async def _check_lmk(self) -> None:
        """Tokens are keys under the LMK: an HSM holding another LMK refuses every one of them,
        so say so plainly once at start."""
        try:
            lmk = await self.diagnostics()
        except (HsmUnavailable, KeysError) as exc:
            log.warning("hsm_not_reachable_at_start", error=str(exc))
            return
        if self.expected_lmk and lmk != self.expected_lmk:
            log.error("hsm_lmk_mismatch", hsm_kcv=lmk, host_kcv=self.expected_lmk)
        else:
            log.info("hsm_ready", lmk_kcv=lmk)

    # -- plumbing ------------------------------------------------------------------------

    async def _connection(self) -> _Connection:
        slot = next(self._turn) % len(self._slots)
        conn = self._slots[slot]
        if conn is not None and not conn.closed:
            return conn
        async with self._connecting[slot]:
            conn = self._slots[slot]
            if conn is not None and not conn.closed:
                return conn
            if self._nursery is None:
                raise HsmUnavailable("the HSM client is not running")
            stream = None
            with trio.move_on_after(self.connect_timeout):
                try:
                    stream = await trio.open_tcp_stream(self.address, self.port)
                except OSError as exc:
                    raise HsmUnavailable(f"connect: {exc.strerror or exc}") from None
            if stream is None:
                raise HsmUnavailable("connect timed out")
            conn = self._slots[slot] = _Connection(stream)
            self._nursery.start_soon(self._reader, conn)
            log.info("hsm_connected", address=f"{self.address}:{self.port}", slot=slot)
            return conn

    async def _reader(self, conn: _Connection) -> None:
        decoder = wire.FrameDecoder()
        try:
            while True:
                data = await conn.stream.receive_some(65536)
                if not data:
                    break
                for header, body in decoder.feed(data):
                    channel = conn.waiters.pop(header, None)
                    if channel is not None:
                        channel.send_nowait(body)
                        channel.close()
        except (trio.BrokenResourceError, trio.ClosedResourceError, wire.WireError) as exc:
            log.warning("hsm_link_lost", error=type(exc).__name__)
        finally:
            conn.fail_all()
            with trio.CancelScope(shield=True):
                await conn.stream.aclose()

    async def _call(self, command: str) -> tuple[str, wire.Fields]:
        """Send one command, await its answer; (error code, fields) or HsmUnavailable."""
        code = command[:2]
        if not self.breaker.admit():
            raise HsmUnavailable("circuit breaker open")
        judged = False
        try:
            body = await self._exchange(command)
            error, fields = wire.parse_answer(code, body)
        except HsmUnavailable as exc:
            judged = True
            self.breaker.failure(str(exc))
            raise
        except wire.WireError as exc:
            judged = True
            self.breaker.failure(str(exc))
            raise HsmUnavailable(f"unreadable answer: {exc}") from None
        finally:
            if not judged:
                self.breaker.release()
        self.breaker.success()
        return error, fields

    async def _exchange(self, command: str) -> str:
        conn: _Connection | None = None
        with trio.move_on_after(self.timeout) as scope:
            conn = await self._connection()
            header = conn.next_header()
            send, receive = trio.open_memory_channel[str](1)
            conn.waiters[header] = send
            try:
                async with conn.send_lock:
                    await self._send(conn, wire.frame(header, command))
                try:
                    return await receive.receive()
                except trio.EndOfChannel:
                    raise HsmUnavailable("the HSM connection closed") from None
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                conn.fail_all()
                raise HsmUnavailable("the HSM connection broke") from None
            finally:
                conn.waiters.pop(header, None)
        assert scope.cancelled_caught
        if conn is not None:  # a hung HSM or a black-holed path: the next try reconnects
            conn.fail_all()
            with trio.CancelScope(shield=True):
                await conn.stream.aclose()
        raise HsmUnavailable(f"no answer within {self.timeout} s")

    @staticmethod
    async def _send(conn: _Connection, data: bytes) -> None:
        """A send interrupted halfway (timeout, cancelled caller) leaves a partial frame on the
        stream that would garble every later command: such a connection is dropped."""
        try:
            await conn.stream.send_all(data)
        except BaseException:
            conn.fail_all()
            with trio.CancelScope(shield=True):
                await conn.stream.aclose()
            raise

    async def _ok(self, command: str) -> wire.Fields:
        error, fields = await self._call(command)
        if error != wire.OK:
            raise _error(command[:2], error)
        return fields

    # -- the interface -------------------------------------------------------------------

    async def translate_pin(
        self, block: bytes, pan: str, source: KeyToken | DukptSource, dest: KeyToken
    ) -> bytes:
        try:
            if isinstance(source, DukptSource):
                command = _g0(source, dest, bytes(block), pan)
            else:
                command = wire.ca_translate_tpk(
                    source.to_text(), dest.to_text(), bytes(block), 0, 0, pan
                )
        except wire.WireError as exc:
            raise PinError(f"PIN translation request: {exc}") from None
        fields = await self._ok(command)
        fields.digits(2)  # PIN length (not disclosed by the simulator: 00)
        return fields.hex(16)

    async def generate_mac(self, mak: KeyToken, data: bytes) -> bytes:
        fields = await self._ok(wire.m6_generate_mac(mak.to_text(), data, "unionpay_ecb", 1))
        return bytes.fromhex(fields.rest())

    async def verify_mac(self, mak: KeyToken, data: bytes, mac: bytes) -> bool:
        try:
            mac = bytes(mac)
            command = wire.m8_verify_mac(mak.to_text(), data, mac, "unionpay_ecb", 1)
        except (wire.WireError, TypeError):
            return False
        error, _ = await self._call(command)
        if error == wire.VERIFY_FAILED:
            return False
        if error != wire.OK:
            raise _error("M8", error)
        return True

    async def generate_key(self, key_type: KeyType, length: int = 16) -> KeyToken:
        fields = await self._ok(wire.a0_generate_key(key_type.value, length))
        return KeyToken.from_text(fields.key())

    async def export_key(self, token: KeyToken, kek: KeyToken) -> tuple[bytes, bytes]:
        fields = await self._ok(wire.a8_export_key(token.to_text(), kek.to_text()))
        cryptogram = bytes.fromhex(fields.sized())
        return cryptogram, fields.hex(8)

    async def generate_exported(
        self, key_type: KeyType, length: int, kek: KeyToken
    ) -> tuple[KeyToken, bytes, bytes]:
        fields = await self._ok(wire.a0_generate_key(key_type.value, length, kek.to_text()))
        token = KeyToken.from_text(fields.key())
        cryptogram = bytes.fromhex(fields.sized())
        return token, cryptogram, fields.hex(8)

    async def decrypt_track(self, tdk: KeyToken, track: str) -> str:
        """M2 on the track's one enciphered block; the host cuts it out and puts it back, so
        the HSM sees 8 bytes of ciphertext and no more of the card than that."""
        cut = TrackBlock.of(track)
        try:
            command = wire.m2_decrypt_data(tdk.to_text(), cut.block)
        except wire.WireError as exc:
            raise KeysError(f"track decryption request: {exc}") from None
        fields = await self._ok(command)
        try:
            size = int(fields.take(4), 16)
            clear = fields.hex(2 * size) if size == len(cut.block) else b""
        except (ValueError, wire.WireError):
            clear = b""
        if not clear:
            raise KeysError("the HSM's M3 answer does not hold the decrypted block")
        return cut.with_block(clear)

    async def check_value(self, token: KeyToken) -> str:
        """BU: the key's check value as the HSM computes it from the key."""
        fields = await self._ok(wire.bu_check_value(token.to_text()))
        return fields.sized()

    async def import_test_key(self, key_type: KeyType, clear: bytes) -> KeyToken:
        """TK: a published clear TEST key wrapped by an hsm-sim started with --test-keys (the
        host calls it at start-up only, for the keys its configuration names as test keys)."""
        error, fields = await self._call(wire.tk_import_test_key(key_type.value, bytes(clear)))
        if error == wire.UNKNOWN_COMMAND:
            raise KeyUsageError(
                "the network HSM does not wrap clear test keys (an hsm-sim needs --test-keys)"
            )
        if error != wire.OK:
            raise _error("TK", error)
        return KeyToken.from_text(fields.key())

    async def diagnostics(self) -> str:
        """NC: the HSM's LMK check value (compare it with the host's before trusting tokens)."""
        fields = await self._ok(wire.nc_diagnostics())
        return fields.sized()
