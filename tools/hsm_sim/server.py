"""The simulator's server: one task per connection, answers in the order commands arrive.

Each command is parsed with keys/hsm_wire.py and carried out by a ``keys.hsm.SoftHSM`` holding
the LMK; failures become the 2-digit error codes a payShield returns, never a closed
connection (only a frame that cannot be parsed closes it). A simulator started with
``--test-keys`` also wraps published clear TEST keys (TK), on a second SoftHSM built for them,
so the HSM that does the work never takes a clear key.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
import trio

from keys import hsm_wire as wire
from keys.errors import KeyError_, KeysError, KeyUsageError, PinError
from keys.hsm import DukptSource, SoftHSM
from keys.tokens import KeyToken, KeyType, parse_key_type

log = structlog.get_logger("poshost.hsm_sim")


class HsmSim:
    """The command handlers; ``answer(body)`` is sans-IO so tests can drive it with strings."""

    def __init__(self, soft: SoftHSM, test_keys: SoftHSM | None = None) -> None:
        self.soft = soft
        self.test_keys = test_keys
        self.handlers: dict[str, Callable[[wire.Fields], str]] = {
            "NC": self._nc,
            "CA": self._ca,
            "G0": self._g0,
            "M2": self._m2,
            "M6": self._m6,
            "M8": self._m8,
            "A0": self._a0,
            "A8": self._a8,
            "BU": self._bu,
        }
        if test_keys is not None:
            self.handlers["TK"] = self._tk
        self.commands = 0
        self.counts: dict[str, int] = {}  # per command code: what the tests and the bench see

    def answer(self, body: str) -> str:
        """The answer body (code + error code + fields) to one command body."""
        command = body[:2]
        if len(command) < 2:
            return "ZZ" + wire.INPUT_ERROR
        code = wire.answer_code(command)
        handler = self.handlers.get(command)
        if handler is None:
            return code + wire.UNKNOWN_COMMAND
        self.commands += 1
        self.counts[command] = self.counts.get(command, 0) + 1
        try:
            return code + handler(wire.Fields(body, 2))
        except wire.WireError:
            return code + wire.INPUT_ERROR
        except PinError:
            return code + wire.PIN_BLOCK_ERROR
        except (KeyError_, KeyUsageError):
            return code + wire.KEY_ERROR
        except (KeysError, ValueError):
            return code + wire.INPUT_ERROR
        except Exception as exc:  # no traceback: its frames hold clear keys
            log.error("hsm_sim_command_failed", command=command, error=type(exc).__name__)
            return code + wire.INTERNAL_ERROR

    @staticmethod
    def _token(fields: wire.Fields) -> KeyToken:
        return KeyToken.from_text(fields.key())

    def _nc(self, fields: wire.Fields) -> str:
        fields.end()
        return wire.OK + wire.sized_field(self.soft.lmk_check_value) + "poshost-hsm-sim"

    def _pin_fields(self, fields: wire.Fields) -> tuple[bytes, int, int, str]:
        block = fields.hex(16)
        src = wire.PIN_FORMATS.get(fields.digits(2))
        dst = wire.PIN_FORMATS.get(fields.digits(2))
        if src is None or dst is None:
            raise PinError("unsupported PIN block format code")
        pan = wire.pan_from_account(fields.digits(12))
        fields.end()
        return block, src, dst, pan

    def _ca(self, fields: wire.Fields) -> str:
        tpk, zpk = self._token(fields), self._token(fields)
        fields.digits(2)  # maximum PIN length
        block, src, dst, pan = self._pin_fields(fields)
        out = self.soft.translate_pin(block, pan, tpk, zpk, dest_format=dst, source_format=src)
        return wire.OK + "00" + out.hex().upper() + wire.PIN_FORMAT_CODES[dst]

    def _g0(self, fields: wire.Fields) -> str:
        bdk, zpk = self._token(fields), self._token(fields)
        fields.take(3)  # KSN descriptor
        if bdk.key_type is KeyType.BDK_AES:
            ksn = fields.hex(24)
            working_key = wire.DUKPT_WORKING_KEYS.get(fields.take(1))
            if working_key is None:
                raise wire.WireError("unknown AES DUKPT working key code")
        else:
            ksn, working_key = fields.hex(20), None
        block = fields.hex(32 if working_key in wire.AES_WORKING_KEYS else 16)
        src = wire.PIN_FORMATS.get(fields.digits(2))
        dst = wire.PIN_FORMATS.get(fields.digits(2))
        if src is None or dst is None:
            raise PinError("unsupported PIN block format code")
        pan = fields.sized() if src == 4 else wire.pan_from_account(fields.digits(12))
        fields.end()
        source = DukptSource(bdk, ksn, src, working_key or "AES128")  # (a TDES BDK has none)
        out = self.soft.translate_pin(block, pan, source, zpk, dest_format=dst)
        return wire.OK + "00" + out.hex().upper() + wire.PIN_FORMAT_CODES[dst]

    def _m2(self, fields: wire.Fields) -> str:
        if fields.take(2) != "00" or fields.take(2) != "11":
            raise wire.WireError("M2 here is ECB with hex input and output")
        fields.take(3)  # key type: the token names it
        key = self._token(fields)
        try:
            size = int(fields.take(4), 16)
        except ValueError:
            raise wire.WireError("the message length is not 4H") from None
        data = fields.hex(2 * size)
        fields.end()
        clear = self.soft.decrypt_data(key, data)
        return wire.OK + f"{len(clear):04X}" + clear.hex().upper()

    def _bu(self, fields: wire.Fields) -> str:
        token = self._token(fields)
        fields.end()
        return wire.OK + wire.sized_field(self.soft.check_value(token))

    def _tk(self, fields: wire.Fields) -> str:
        assert self.test_keys is not None  # TK is registered only with a test-key HSM
        name = fields.sized()
        clear = bytes.fromhex(fields.sized())
        fields.end()
        if name not in wire.TEST_KEY_TYPES:
            raise KeyUsageError(f"a {name} is not taken as a clear test key")
        token = self.test_keys.import_clear(parse_key_type(name), clear)
        return wire.OK + wire.key_field(token.to_text())

    def _mac_fields(self, fields: wire.Fields) -> tuple[KeyToken, bytes, str, int]:
        fields.take(2)  # mode flag, input format (binary)
        algorithm = wire.MAC_ALGORITHMS.get(fields.take(1))
        if algorithm is None:
            raise wire.WireError("unknown MAC algorithm code")
        padding = int(fields.digits(1))
        mak = self._token(fields)
        try:
            size = int(fields.take(4), 16)
        except ValueError:
            raise wire.WireError("the message length is not 4H") from None
        return mak, fields.take(size).encode("latin-1"), algorithm, padding

    def _m6(self, fields: wire.Fields) -> str:
        mak, data, algorithm, padding = self._mac_fields(fields)
        fields.end()
        return wire.OK + self.soft.generate_mac(mak, data, algorithm, padding).hex().upper()

    def _m8(self, fields: wire.Fields) -> str:
        mak, data, algorithm, padding = self._mac_fields(fields)
        try:
            mac = bytes.fromhex(fields.rest())
        except ValueError:
            raise wire.WireError("the MAC is not hex") from None
        ok = self.soft.verify_mac(mak, data, mac, algorithm, padding)
        return wire.OK if ok else wire.VERIFY_FAILED

    def _a0(self, fields: wire.Fields) -> str:
        export = fields.take(1) == "1"
        key_type = parse_key_type(fields.sized())
        length = {"Z": 8, "U": 16, "T": 24, "A": 32}.get(fields.take(1))
        if length is None:
            raise wire.WireError("unknown key scheme")
        kek = None
        if export:
            if not fields.optional(";"):
                raise wire.WireError("mode 1 needs ';' and the exporting key")
            kek = self._token(fields)
        fields.end()
        token = self.soft.generate_key(key_type, length)
        out = wire.OK + wire.key_field(token.to_text())
        if kek is not None:
            out += self._exported(token, kek)
        return out

    def _a8(self, fields: wire.Fields) -> str:
        kek, token = self._token(fields), self._token(fields)
        fields.end()
        return wire.OK + self._exported(token, kek)

    def _exported(self, token: KeyToken, kek: KeyToken) -> str:
        cryptogram, check_value = self.soft.export_key(token, kek)
        return wire.sized_field(cryptogram.hex().upper()) + check_value.hex().upper()


async def serve_connection(sim: HsmSim, stream: trio.SocketStream) -> None:
    decoder = wire.FrameDecoder()
    async with stream:
        try:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                out = bytearray()
                for header, body in decoder.feed(data):
                    out += wire.frame(header, sim.answer(body))
                if out:
                    await stream.send_all(bytes(out))
        except wire.WireError as exc:
            log.warning("hsm_sim_bad_frame", error=str(exc))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return


async def serve_hsm(sim: HsmSim, host: str, port: int, *, task_status=trio.TASK_STATUS_IGNORED):
    """Listen on host:port; task_status gets the bound port."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("hsm_sim_listening", address=f"{host}:{bound}", lmk_kcv=sim.soft.lmk_check_value)
    task_status.started(bound)
    await trio.serve_listeners(lambda stream: serve_connection(sim, stream), listeners)


# The terminal dialect's MAK is single-length in every key mode and the PIK in mode 001: an HSM
# serving such terminals allows exactly these two at 8 bytes (the host's hsm.single_length_types
# default).
DIALECT_SINGLE_LENGTH = frozenset({KeyType.TAK, KeyType.TPK})


def sim_hsm(lmk_hex: str) -> SoftHSM:
    """The simulator's key engine: its LMK, the dialect's single-length types."""
    return SoftHSM.from_hex(lmk_hex, single_length=DIALECT_SINGLE_LENGTH)


def sim_test_key_hsm(lmk_hex: str) -> SoftHSM:
    """The second engine of ``--test-keys``: the same LMK, takes published clear test keys."""
    return SoftHSM.from_hex(lmk_hex, clear_test_keys=True, single_length=DIALECT_SINGLE_LENGTH)
