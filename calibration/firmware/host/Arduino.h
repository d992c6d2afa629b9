/* Arduino.h for a host build of the thrust-stand sketch against a simulated board (board.c).
 *
 * Only what the sketch uses, with Arduino's signatures, so that the sketch the user flashes is the code
 * the tests run: the board simulates two HX711 converters (80 conversions/s, bit-banged serial protocol),
 * an RPM pulse train on the interrupt pin, two analog inputs and the USB serial port (stdout / scripted
 * input), on a simulated microsecond clock that starts near the uint32 wrap of micros().
 */
#ifndef HOST_ARDUINO_H
#define HOST_ARDUINO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HIGH 1
#define LOW 0
#define INPUT 0
#define OUTPUT 1
#define INPUT_PULLUP 2
#define RISING 3
#define A0 14
#define A1 15

typedef struct {
  void (*begin)(unsigned long baud);
  size_t (*write)(const uint8_t *buf, size_t n);
  int (*available)(void);
  int (*read)(void);
} HostSerial;
extern HostSerial Serial;

void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t value);
int digitalRead(uint8_t pin);
int analogRead(uint8_t pin);
uint32_t micros(void);
void delayMicroseconds(unsigned int us);
void attachInterrupt(int irq, void (*isr)(void), int mode);
void host_no_interrupts(void);
void host_interrupts(void);
#define digitalPinToInterrupt(p) (p)
#define noInterrupts() host_no_interrupts()
#define interrupts() host_interrupts()

void setup(void);
void loop(void);
#endif
