// The Arduino API test double: Serial over stdin/stdout with USB-CDC semantics, PDM fed from a
// WAV at the pace of a virtual clock, millis/delay, LED changes logged to stderr, and a main()
// that runs setup() then loop() until told to stop. README.md here lists the NKA_* settings.
//
// "Interrupts" (PDM blocks, the port opening or closing) are taken whenever the sketch calls into
// the double and between loop() calls, never in the middle of the sketch's own code: the order
// of events is the board's, but not every interleaving an interrupt could produce.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "Arduino.h"
#include "PDM.h"

namespace {

// ---- settings (environment) -------------------------------------------------------------------

double g_speed = 1.0;              // NKA_SPEED: virtual time = wall time x speed
long long g_stop_at_ms = -1;       // NKA_STOP_AT_MS: stop at this virtual time (-1: at stdin EOF)
long long g_open_at_ms = 0;        // NKA_PORT_OPEN_AT_MS: the host opens the port then (-1: never)
long long g_close_at_ms = -1;      // NKA_PORT_CLOSE_AT_MS: and closes it then (-1: never)
long long g_stop_after_loops = -1; // NKA_STOP_AFTER_LOOPS: stop after this many loop()s (-1: no)

enum PdmSource { kPdmZeros, kPdmConstant, kPdmNone, kPdmWav };
PdmSource g_pdm_source = kPdmZeros; // NKA_PDM: zeros | constant:<v> | none | wav:<path>
int16_t g_pdm_constant = 0;
int16_t *g_wav = nullptr; // the WAV's samples (test code: the heap is fine here)
size_t g_wav_len = 0;

// ---- state -------------------------------------------------------------------------------------

struct timespec g_t0;
bool g_in_isr = false;    // inside a PDM callback: no nested "interrupts"
bool g_in_sketch = false; // inside setup() or loop()
bool g_port_open = false;
bool g_port_was_opened = false;
bool g_port_closed_by_peer = false; // stdout's reader went away (EPIPE)
bool g_stdin_eof = false;
unsigned long long g_loops = 0;
unsigned long long g_tx_bytes = 0;
unsigned long long g_dropped_bytes = 0; // written while the port was closed
int g_pin_mode[64];
int g_pin_value[64];

// Serial receive ring: RingBufferN<256>, as in the core's USBSerial.
uint8_t g_rx[256];
size_t g_rx_head = 0, g_rx_count = 0;

// PDM: the core's PDMDoubleBuffer, reduced to the half that can be read.
constexpr size_t kPdmMaxBuffer = 8192;
bool g_pdm_running = false;
bool g_pdm_overflowed = false;
long long g_pdm_start_ns = 0;
unsigned long long g_pdm_blocks = 0; // callbacks so far (the first one hands out zeros)
size_t g_pdm_buffer_size = 512;      // DEFAULT_PDM_BUFFER_SIZE
uint8_t g_pdm_buf[kPdmMaxBuffer];
size_t g_pdm_len = 0, g_pdm_off = 0;
size_t g_wav_pos = 0;
unsigned long long g_pdm_samples = 0;

long long wall_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)(ts.tv_sec - g_t0.tv_sec) * 1000000000LL + (ts.tv_nsec - g_t0.tv_nsec);
}

long long vnow_ns() { return (long long)((double)wall_ns() * g_speed); }

long long vnow_ms() { return vnow_ns() / 1000000LL; }

void nka_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void nka_log(const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "nka: %lld ms: %s\n", vnow_ms(), line);
    fflush(stderr);
}

[[noreturn]] void finish(int code, const char *why) {
    nka_log("stop (%s): loop() ran %llu times, serial sent %llu bytes, dropped %llu bytes while the port "
            "was closed, pdm delivered %llu samples",
            why, g_loops, g_tx_bytes, g_dropped_bytes, g_pdm_samples);
    fflush(stdout);
    exit(code);
}

[[noreturn]] void fail(const char *what) {
    fprintf(stderr, "nka: error: %s\n", what);
    exit(2);
}

long long env_ll(const char *name, long long fallback) {
    const char *v = getenv(name);
    if (v == nullptr || *v == '\0') {
        return fallback;
    }
    if (strcmp(v, "never") == 0) {
        return -1;
    }
    char *end = nullptr;
    long long x = strtoll(v, &end, 10);
    if (*end != '\0') {
        fprintf(stderr, "nka: error: %s=%s is not a whole number\n", name, v);
        exit(2);
    }
    return x;
}

uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

// A 16 kHz mono 16-bit PCM WAV, whole, into g_wav.
void load_wav(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == nullptr) {
        fail("NKA_PDM=wav:<path>: cannot open the WAV file");
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *bytes = static_cast<uint8_t *>(malloc(size > 0 ? (size_t)size : 1));
    if (bytes == nullptr || size < 12 || fread(bytes, 1, (size_t)size, f) != (size_t)size ||
        memcmp(bytes, "RIFF", 4) != 0 || memcmp(bytes + 8, "WAVE", 4) != 0) {
        fail("NKA_PDM: not a RIFF/WAVE file");
    }
    fclose(f);
    bool fmt_ok = false;
    size_t pos = 12;
    while (pos + 8 <= (size_t)size) {
        uint32_t len = le32(bytes + pos + 4);
        const uint8_t *body = bytes + pos + 8;
        if (len > (size_t)size - pos - 8) {
            len = (uint32_t)((size_t)size - pos - 8); // a truncated last chunk: take what is there
        }
        if (memcmp(bytes + pos, "fmt ", 4) == 0 && len >= 16) {
            fmt_ok =
                le16(body) == 1 && le16(body + 2) == 1 && le32(body + 4) == 16000 && le16(body + 14) == 16;
        } else if (memcmp(bytes + pos, "data", 4) == 0) {
            if (!fmt_ok) {
                fail("NKA_PDM: the WAV must be 16 kHz mono 16-bit PCM");
            }
            g_wav_len = len / 2;
            g_wav = static_cast<int16_t *>(malloc(g_wav_len * 2 + 2));
            if (g_wav == nullptr) {
                fail("out of memory for the WAV");
            }
            for (size_t i = 0; i < g_wav_len; i++) {
                g_wav[i] = (int16_t)le16(body + 2 * i);
            }
            free(bytes);
            return;
        }
        pos += 8 + len + (len & 1u);
    }
    fail("NKA_PDM: the WAV has no data chunk");
}

void configure() {
    const char *speed = getenv("NKA_SPEED");
    if (speed != nullptr && *speed != '\0') {
        g_speed = strtod(speed, nullptr);
        if (!(g_speed > 0.0)) {
            fail("NKA_SPEED must be a number above 0");
        }
    }
    g_stop_at_ms = env_ll("NKA_STOP_AT_MS", -1);
    g_open_at_ms = env_ll("NKA_PORT_OPEN_AT_MS", 0);
    g_close_at_ms = env_ll("NKA_PORT_CLOSE_AT_MS", -1);
    g_stop_after_loops = env_ll("NKA_STOP_AFTER_LOOPS", -1);
    const char *pdm = getenv("NKA_PDM");
    if (pdm == nullptr || *pdm == '\0' || strcmp(pdm, "zeros") == 0) {
        g_pdm_source = kPdmZeros;
    } else if (strcmp(pdm, "none") == 0) {
        g_pdm_source = kPdmNone;
    } else if (strncmp(pdm, "constant:", 9) == 0) {
        g_pdm_source = kPdmConstant;
        g_pdm_constant = (int16_t)strtol(pdm + 9, nullptr, 10);
    } else if (strncmp(pdm, "wav:", 4) == 0) {
        g_pdm_source = kPdmWav;
        load_wav(pdm + 4);
    } else {
        fail("NKA_PDM must be zeros, none, constant:<value> or wav:<path>");
    }
}

// ---- the "interrupts" --------------------------------------------------------------------------

void port_events(long long now_ms) {
    const bool should_be_open = g_open_at_ms >= 0 && now_ms >= g_open_at_ms &&
                                !(g_close_at_ms >= 0 && now_ms >= g_close_at_ms) && !g_port_closed_by_peer;
    if (should_be_open != g_port_open) {
        g_port_open = should_be_open;
        g_port_was_opened = g_port_was_opened || should_be_open;
        nka_log("port %s", should_be_open ? "opened" : "closed");
    }
}

long long pdm_block_ns() {
    return (long long)(g_pdm_buffer_size / 2u) * 1000000000LL / 16000LL; // mono int16 at 16 kHz
}

// One STARTED event of the nRF52 PDM: if the last block was not read the core stops the PDM
// ("buffer overflow, stop"); otherwise the next block becomes readable and onReceive runs.
void pdm_block(void (*on_receive)(void)) {
    if (g_pdm_len - g_pdm_off != 0) {
        g_pdm_running = false;
        g_pdm_overflowed = true;
        nka_log("pdm: buffer overflow, the PDM stopped (as the core does when a block is not read in time)");
        return;
    }
    const size_t n = g_pdm_buffer_size / 2u;
    for (size_t i = 0; i < n; i++) {
        int16_t v = 0; // the first block is the buffer's reset contents: zeros
        if (g_pdm_blocks > 0) {
            if (g_pdm_source == kPdmConstant) {
                v = g_pdm_constant;
            } else if (g_pdm_source == kPdmWav && g_wav_pos < g_wav_len) {
                v = g_wav[g_wav_pos++];
            }
        }
        memcpy(g_pdm_buf + 2u * i, &v, sizeof v); // native order, as the PDM's DMA writes it
    }
    g_pdm_len = n * 2u;
    g_pdm_off = 0;
    g_pdm_blocks++;
    g_pdm_samples += n;
    if (on_receive != nullptr) {
        g_in_isr = true;
        on_receive();
        g_in_isr = false;
    }
}

void (*g_pdm_on_receive)(void) = nullptr;

void pdm_events(long long now_ns) {
    while (g_pdm_running && g_pdm_source != kPdmNone &&
           g_pdm_start_ns + (long long)g_pdm_blocks * pdm_block_ns() <= now_ns) {
        pdm_block(g_pdm_on_receive);
    }
}

// A sketch still inside setup() or one loop() this long (wall time) after NKA_STOP_AT_MS is hung.
constexpr long long kHangWallNs = 2000000000LL;

// Called on every entry into the double: stop when due, then take the due "interrupts". The stop
// waits for the end of setup() or of a loop(): a sketch that never gets there (waiting for a
// host, spinning on a write) is reported as hung instead of being stopped as if all were well.
void tick() {
    if (g_in_isr) {
        return;
    }
    const long long now = vnow_ns();
    if (g_stop_at_ms >= 0 && now / 1000000LL >= g_stop_at_ms) {
        if (!g_in_sketch) {
            finish(0, "NKA_STOP_AT_MS reached");
        }
        if (wall_ns() - (long long)((double)g_stop_at_ms * 1e6 / g_speed) > kHangWallNs) {
            finish(4, "hung: still inside setup() or loop() 2 s after NKA_STOP_AT_MS");
        }
    }
    port_events(now / 1000000LL);
    pdm_events(now);
}

// Wall-clock sleep for `virtual_ns` of the double's time, waking for each PDM block on the way.
void sleep_virtual(long long virtual_ns) {
    const long long until = vnow_ns() + virtual_ns;
    for (;;) {
        tick();
        long long now = vnow_ns();
        if (now >= until) {
            return;
        }
        long long step = until - now;
        if (g_pdm_running && g_pdm_source != kPdmNone) {
            long long next = g_pdm_start_ns + (long long)g_pdm_blocks * pdm_block_ns() - now;
            step = next > 0 && next < step ? next : step;
        }
        long long wall = (long long)((double)step / g_speed) + 1;
        struct timespec ts = {(time_t)(wall / 1000000000LL), (long)(wall % 1000000000LL)};
        nanosleep(&ts, nullptr);
    }
}

// ---- Serial helpers -----------------------------------------------------------------------------

void rx_fill() {
    if (!g_port_open || g_stdin_eof || g_rx_count == sizeof g_rx) {
        return;
    }
    struct pollfd p = {0, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0 || (p.revents & (POLLIN | POLLHUP)) == 0) {
        return;
    }
    uint8_t buf[256];
    const size_t want = sizeof g_rx - g_rx_count;
    ssize_t got = ::read(0, buf, want);
    if (got == 0) {
        g_stdin_eof = true;
        return;
    }
    for (ssize_t i = 0; i < got; i++) {
        g_rx[(g_rx_head + g_rx_count) % sizeof g_rx] = buf[i];
        g_rx_count++;
    }
}

void stop_at_eof_when_drained() {
    if (g_stdin_eof && g_rx_count == 0 && g_stop_at_ms < 0) {
        finish(0, "stdin ended");
    }
}

size_t tx(const uint8_t *data, size_t size) {
    tick();
    if (!g_port_open) {
        g_dropped_bytes += size;
        return 0;
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = ::write(1, data + done, size - done); // blocks while the pipe is full
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            // The reader is gone: as if the host closed the port mid-transfer. The core's write
            // then still returns the full size (it ignores the aborted send's result).
            g_port_closed_by_peer = true;
            port_events(vnow_ms());
            g_dropped_bytes += size - done;
            break;
        }
        done += (size_t)n;
        g_tx_bytes += (size_t)n;
    }
    return size;
}

} // namespace

// ---- Arduino API ---------------------------------------------------------------------------------

NkaUsbSerial Serial;
uint32_t SystemCoreClock = 64000000u;
NkaDwt nka_dwt;
NkaCoreDebug nka_core_debug;

namespace {
uint32_t g_cyc_offset = 0;

uint32_t cycles_now() {
    return (uint32_t)((unsigned long long)vnow_ns() * (SystemCoreClock / 1000000u) / 1000u);
}

bool cyc_enabled() {
    return (nka_dwt.CTRL & DWT_CTRL_CYCCNTENA_Msk) != 0 &&
           (nka_core_debug.DEMCR & CoreDebug_DEMCR_TRCENA_Msk) != 0;
}
uint32_t g_cyc_frozen = 0;
} // namespace

NkaCycleCounter::operator uint32_t() const {
    return cyc_enabled() ? cycles_now() - g_cyc_offset : g_cyc_frozen;
}

NkaCycleCounter &NkaCycleCounter::operator=(uint32_t value) {
    g_cyc_offset = cycles_now() - value;
    g_cyc_frozen = value;
    return *this;
}

void NVIC_SystemReset(void) {
    nka_log("NVIC_SystemReset()");
    finish(3, "NVIC_SystemReset");
}

void pinMode(int pin, int mode) {
    tick();
    if (pin >= 0 && pin < 64) {
        g_pin_mode[pin] = mode;
    }
}

void digitalWrite(int pin, int value) {
    tick();
    if (pin < 0 || pin >= 64) {
        return;
    }
    if (g_pin_mode[pin] != OUTPUT) {
        nka_log("warning: digitalWrite(%d) on a pin not set to OUTPUT", pin);
    }
    const int v = value ? HIGH : LOW;
    if (v != g_pin_value[pin]) {
        g_pin_value[pin] = v;
        if (pin == (int)LED_BUILTIN) {
            nka_log("led %s", v ? "on" : "off");
        } else {
            nka_log("pin %d %s", pin, v ? "high" : "low");
        }
    }
}

int digitalRead(int pin) {
    tick();
    return pin >= 0 && pin < 64 ? g_pin_value[pin] : LOW;
}

unsigned long millis(void) {
    tick();
    return (uint32_t)vnow_ms(); // 32 bits wide on the board: wraps the same way
}

unsigned long micros(void) {
    tick();
    return (uint32_t)(vnow_ns() / 1000LL);
}

void delay(unsigned long ms) { sleep_virtual((long long)ms * 1000000LL); }

void yield(void) { tick(); }

// ---- Print ------------------------------------------------------------------------------------

size_t Print::write(const uint8_t *buffer, size_t size) {
    size_t n = 0;
    while (size-- > 0) {
        if (write(*buffer++) == 0) {
            break;
        }
        n++;
    }
    return n;
}

size_t Print::print_unsigned(unsigned long long value, int base) {
    char buf[8 * sizeof value + 1];
    char *p = &buf[sizeof buf - 1];
    *p = '\0';
    const unsigned b = base < 2 ? 10u : (unsigned)base;
    do {
        const unsigned d = (unsigned)(value % b);
        *--p = (char)(d < 10 ? '0' + d : 'A' + d - 10);
        value /= b;
    } while (value != 0);
    return write(p);
}

size_t Print::print_signed(long long value, int base) {
    if (base == 10 && value < 0) {
        size_t n = print('-');
        return n + print_unsigned(0ULL - (unsigned long long)value, 10);
    }
    return print_unsigned((unsigned long long)value, base);
}

size_t Print::print(const char s[]) { return write(s); }
size_t Print::print(char c) { return write((uint8_t)c); }
size_t Print::print(unsigned char v, int base) { return print_unsigned(v, base); }
size_t Print::print(int v, int base) { return print_signed(v, base); }
size_t Print::print(unsigned int v, int base) { return print_unsigned(v, base); }
size_t Print::print(long v, int base) { return print_signed(v, base); }
size_t Print::print(unsigned long v, int base) { return print_unsigned(v, base); }
size_t Print::print(long long v, int base) { return print_signed(v, base); }
size_t Print::print(unsigned long long v, int base) { return print_unsigned(v, base); }

size_t Print::println(void) { return write("\r\n"); } // the core ends lines with CR LF
size_t Print::println(const char s[]) { return print(s) + println(); }
size_t Print::println(char c) { return print(c) + println(); }
size_t Print::println(unsigned char v, int base) { return print(v, base) + println(); }
size_t Print::println(int v, int base) { return print(v, base) + println(); }
size_t Print::println(unsigned int v, int base) { return print(v, base) + println(); }
size_t Print::println(long v, int base) { return print(v, base) + println(); }
size_t Print::println(unsigned long v, int base) { return print(v, base) + println(); }
size_t Print::println(long long v, int base) { return print(v, base) + println(); }
size_t Print::println(unsigned long long v, int base) { return print(v, base) + println(); }

// ---- Serial -----------------------------------------------------------------------------------

void NkaUsbSerial::begin(unsigned long baud) {
    (void)baud;
    tick();
}

int NkaUsbSerial::available(void) {
    tick();
    rx_fill();
    stop_at_eof_when_drained();
    return (int)g_rx_count;
}

int NkaUsbSerial::peek(void) {
    tick();
    rx_fill();
    return g_rx_count ? g_rx[g_rx_head] : -1;
}

int NkaUsbSerial::read(void) {
    tick();
    rx_fill();
    if (g_rx_count == 0) {
        return -1;
    }
    const int c = g_rx[g_rx_head];
    g_rx_head = (g_rx_head + 1) % sizeof g_rx;
    g_rx_count--;
    return c;
}

size_t NkaUsbSerial::write(uint8_t c) { return tx(&c, 1) ? 1 : 0; }

size_t NkaUsbSerial::write(const uint8_t *buffer, size_t size) { return tx(buffer, size); }

NkaUsbSerial::operator bool() {
    delay(1); // the core does this, to let other threads run in a `while (!Serial)` loop
    return g_port_open;
}

// ---- PDM --------------------------------------------------------------------------------------

PDMClass::PDMClass(int dinPin, int clkPin, int pwrPin)
    : _dinPin(dinPin), _clkPin(clkPin), _pwrPin(pwrPin), _gain(-1), _onReceive(nullptr) {}

int PDMClass::begin(int channels, int sampleRate) {
    tick();
    if ((sampleRate != 16000 && sampleRate != 41667) || (channels != 1 && channels != 2)) {
        return 0; // what the core rejects
    }
    if (sampleRate != 16000 || channels != 1) {
        fail("the PDM double only produces 16 kHz mono");
    }
    if (_gain == -1) {
        _gain = 20; // DEFAULT_PDM_GAIN
    }
    g_pdm_len = g_pdm_off = 0;
    g_pdm_blocks = 0;
    g_pdm_overflowed = false;
    g_pdm_on_receive = _onReceive;
    g_pdm_start_ns = vnow_ns();
    g_pdm_running = true;
    return 1; // microphone or not: the core never checks
}

void PDMClass::end() {
    tick();
    g_pdm_running = false;
}

int PDMClass::available() { return (int)(g_pdm_len - g_pdm_off); }

int PDMClass::read(void *buffer, size_t size) {
    const size_t avail = g_pdm_len - g_pdm_off;
    const size_t n = size < avail ? size : avail;
    memcpy(buffer, g_pdm_buf + g_pdm_off, n);
    g_pdm_off += n;
    return (int)n;
}

void PDMClass::onReceive(void (*function)(void)) {
    _onReceive = function;
    g_pdm_on_receive = function;
}

void PDMClass::setGain(int gain) { _gain = gain; } // not applied to the samples

void PDMClass::setBufferSize(int bufferSize) {
    if (bufferSize <= 0 || (size_t)bufferSize > kPdmMaxBuffer || bufferSize % 2 != 0) {
        fail("setBufferSize: the double holds 2..8192 bytes, even");
    }
    g_pdm_buffer_size = (size_t)bufferSize;
    g_pdm_len = g_pdm_off = 0;
}

size_t PDMClass::getBufferSize() { return g_pdm_buffer_size; }

PDMClass PDM(29, 28, 27); // PIN_PDM_DIN, PIN_PDM_CLK, PIN_PDM_PWR on the Nano 33 BLE Sense

// ---- the core's main() -------------------------------------------------------------------------

int main(void) {
    clock_gettime(CLOCK_MONOTONIC, &g_t0);
    signal(SIGPIPE, SIG_IGN); // a closed stdout is a closed port, not a crash
    configure();
    tick();
    g_in_sketch = true;
    setup();
    g_in_sketch = false;
    nka_log("setup() returned");
    for (;;) {
        tick();
        g_in_sketch = true;
        loop();
        g_in_sketch = false;
        g_loops++;
        if (g_stop_after_loops >= 0 && g_loops >= (unsigned long long)g_stop_after_loops) {
            finish(0, "NKA_STOP_AFTER_LOOPS reached"); // a sketch that does its work in setup()
        }
        tick();
        // The board spins here; the double naps a little so idle sketches do not eat a core.
        struct timespec ts = {0, 50000};
        nanosleep(&ts, nullptr);
    }
}
