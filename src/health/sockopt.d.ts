// The types of the `sockopt` package (it ships none): integer options of a connected or bound
// net.Socket, by level and name as <sys/socket.h> numbers them.
declare module 'sockopt' {
  import type { Socket } from 'node:net';
  export function setsockopt(socket: Socket, level: number, name: number, value: number): void;
  export function getsockopt(socket: Socket, level: number, name: number): number;
}
