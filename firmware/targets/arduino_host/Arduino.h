// Test double of the Arduino API (Arduino mbed core 4.5.0, Nano 33 BLE) for the host: just what
// firmware/src/*.cpp uses, with the core's behaviour where it matters (see README.md here).
// Not the real header: only declarations our sketch needs, in the core's shapes.
#ifndef NKA_ARDUINO_H
#define NKA_ARDUINO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HIGH 0x1
#define LOW 0x0
#define INPUT 0x0
#define OUTPUT 0x1
#define LED_BUILTIN 13u // PIN_LED on the Nano 33 BLE (P0.13)
#define DEC 10
#define HEX 16

typedef int PinMode;
typedef int PinStatus;

void pinMode(int pin, int mode);
void digitalWrite(int pin, int value);
int digitalRead(int pin);
unsigned long millis(void);
unsigned long micros(void);
void delay(unsigned long ms);
void yield(void);

// The sketch's entry points; the double's main() calls setup() once, then loop() forever.
void setup(void);
void loop(void);

// ---- Print (ArduinoCore-API api/Print.h: the same overloads, so calls resolve the same way) ----
class Print {
  public:
    virtual ~Print() {}
    virtual size_t write(uint8_t) = 0;
    virtual size_t write(const uint8_t *buffer, size_t size);
    size_t write(const char *str) { return str == nullptr ? 0 : write((const uint8_t *)str, strlen(str)); }
    size_t write(const char *buffer, size_t size) { return write((const uint8_t *)buffer, size); }

    size_t print(const char[]);
    size_t print(char);
    size_t print(unsigned char, int = DEC);
    size_t print(int, int = DEC);
    size_t print(unsigned int, int = DEC);
    size_t print(long, int = DEC);
    size_t print(unsigned long, int = DEC);
    size_t print(long long, int = DEC);
    size_t print(unsigned long long, int = DEC);

    size_t println(const char[]);
    size_t println(char);
    size_t println(unsigned char, int = DEC);
    size_t println(int, int = DEC);
    size_t println(unsigned int, int = DEC);
    size_t println(long, int = DEC);
    size_t println(unsigned long, int = DEC);
    size_t println(long long, int = DEC);
    size_t println(unsigned long long, int = DEC);
    size_t println(void);

  private:
    size_t print_signed(long long value, int base);
    size_t print_unsigned(unsigned long long value, int base);
};

// ---- Serial: USB CDC as arduino::UART over mbed's USBSerial (Serial.cpp, PluggableUSBSerial.h) ----
// "Open" means the host has the port open (DTR set), i.e. USBCDC's _terminal_connected.
class NkaUsbSerial : public Print {
  public:
    void begin(unsigned long baud); // USB CDC: the rate is ignored
    void end(void) {}
    int available(void); // bytes received; always 0 while the port is closed
    int peek(void);
    int read(void); // -1 when none
    void flush(void) {}
    size_t write(uint8_t c) override;
    // Blocks until the host has taken the bytes while the port is open and returns size;
    // returns 0 at once while it is closed (the bytes go nowhere).
    size_t write(const uint8_t *buffer, size_t size) override;
    using Print::write;
    // Whether the host has the port open; like the core it first delays 1 ms.
    operator bool();
};
extern NkaUsbSerial Serial;

// ---- Cortex-M4 bits: DWT/CoreDebug as plain structs, except a CYCCNT that counts ----
extern uint32_t SystemCoreClock; // 64 MHz, as on the nRF52840
// Counts SystemCoreClock ticks of the double's (virtual) time while TRCENA and CYCCNTENA are
// both set, as the hardware counter does; frozen otherwise.
class NkaCycleCounter {
  public:
    operator uint32_t() const;
    NkaCycleCounter &operator=(uint32_t value);
};
struct NkaDwt {
    uint32_t CTRL;
    NkaCycleCounter CYCCNT;
};
struct NkaCoreDebug {
    uint32_t DEMCR;
};
extern NkaDwt nka_dwt;
extern NkaCoreDebug nka_core_debug;
#define DWT (&nka_dwt)
#define CoreDebug (&nka_core_debug)
#define DWT_CTRL_CYCCNTENA_Msk (1UL << 0)
#define CoreDebug_DEMCR_TRCENA_Msk (1UL << 24)

#define __CORTEX_M 4U // as CMSIS's core_cm4.h says

// Logs the reset and ends the process (exit code 3): the double cannot start the sketch again.
[[noreturn]] void NVIC_SystemReset(void);

#endif // NKA_ARDUINO_H
