// Serves `criu restore --stream` for the agent: answers CRIU's image requests on DIR/streamer-serve.sock and hands each pipe CRIU sends on to the agent by its /proc path.
//
// CRIU's image streaming (criu/img-streamer.c) asks for each image by name over a UNIX socket and, for one that
// exists, sends the write end of a pipe it then reads the image from, as an SCM_RIGHTS message. Node cannot
// receive a descriptor that way, so this small program does that part and nothing else: the agent decides what
// exists and writes every byte. Lines on stdout (to the agent) and stdin (from it):
//
//   -> listening        the socket is bound: criu may start
//   -> open NAME        criu asks for image NAME
//   <- yes | no         whether the agent has it
//   -> pipe FD          (after yes) criu's pipe is this process's FD: the agent opens /proc/PID/fd/FD for writing
//   <- taken            the agent holds its own: this process closes FD
//   -> end              criu closed the connection (it asks for nothing more)
//
// Exit status: 0 after `end`; 2 a bad argument; 3 a socket error; 4 a request or reply that breaks the protocol.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCKET_NAME "streamer-serve.sock"
/* CRIU's image names are short (e.g. pages-12.img, tmpfs-dev-68.tar.gz.img). */
#define MAX_NAME 255
/* A pipe this large lets CRIU read a megabyte of pages per wake-up rather than 64 KiB. */
#define PIPE_BYTES (1 << 20)

static int fail(int code, const char *what) {
  if (code == 4) errno = 0; /* a protocol error is not a system call's */
  fprintf(stderr, "spotsnap-image-relay: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
  return code;
}

/* Reads exactly n bytes; 0 at a clean end before the first byte, 1 when read, -1 otherwise. */
static int read_exact(int fd, void *buffer, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buffer + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) {
      errno = 0; /* cut short: no system call failed, and fail() says no stale error */
      return got == 0 ? 0 : -1;
    }
    got += (size_t)r;
  }
  return 1;
}

static int write_exact(int fd, const void *buffer, size_t n) {
  size_t put = 0;
  while (put < n) {
    ssize_t w = write(fd, (const char *)buffer + put, n - put);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    put += (size_t)w;
  }
  return 0;
}

/* The filename of an img_streamer_request_entry (protobuf field 1, a string), or -1 when it is not one. */
static int parse_request(const uint8_t *message, uint32_t length, char *name) {
  uint32_t at = 0, bytes = 0;
  int shift = 0;
  if (length < 2 || message[at++] != 0x0a) return -1;
  for (;;) {
    if (at >= length || shift > 28) return -1;
    uint8_t b = message[at++];
    bytes |= (uint32_t)(b & 0x7f) << shift;
    shift += 7;
    if (b < 0x80) break;
  }
  if (bytes == 0 || bytes > MAX_NAME || at + bytes != length) return -1;
  for (uint32_t i = 0; i < bytes; i++) {
    char c = (char)message[at + i];
    int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!plain) return -1;
    name[i] = c;
  }
  name[bytes] = '\0';
  return 0;
}

/* One line from the agent, without its newline; -1 at its end or on a line too long. */
static int read_line(char *line, size_t size) {
  if (!fgets(line, (int)size, stdin)) return -1;
  size_t n = strlen(line);
  if (n == 0 || line[n - 1] != '\n') return -1;
  line[n - 1] = '\0';
  return 0;
}

/* The descriptor CRIU sends beside its one-byte message. */
static int receive_pipe(int sock) {
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr header;
    char space[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof(control.space)};
  ssize_t r;
  do r = recvmsg(sock, &message, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r != 1) return -1;
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&message);
  if (!cmsg || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS || cmsg->cmsg_len != CMSG_LEN(sizeof(int))) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  return fd;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: spotsnap-image-relay IMAGES_DIR (serves criu restore --stream with IMAGES_DIR/%s)\n", SOCKET_NAME);
    return 2;
  }
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  int length = snprintf(address.sun_path, sizeof(address.sun_path), "%s/%s", argv[1], SOCKET_NAME);
  if (length < 0 || (size_t)length >= sizeof(address.sun_path)) {
    fprintf(stderr, "spotsnap-image-relay: %s/%s is longer than a UNIX socket path may be (%zu bytes): use a shorter directory\n", argv[1],
            SOCKET_NAME, sizeof(address.sun_path) - 1);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* A peer gone (CRIU or the agent) is an error to report with its exit status, not a SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return fail(3, "socket");
  if (bind(listener, (struct sockaddr *)&address, sizeof(address)) < 0) return fail(3, address.sun_path);
  if (listen(listener, 1) < 0) return fail(3, "listen");
  printf("listening\n");
  int criu = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
  if (criu < 0) return fail(3, "accept");
  close(listener);
  unlink(address.sun_path);
  char name[MAX_NAME + 1], line[64];
  for (;;) {
    uint32_t size;
    int got = read_exact(criu, &size, sizeof(size));
    if (got == 0) break;
    if (got < 0) return fail(3, "reading a request");
    uint8_t message[MAX_NAME + 16];
    if (size > sizeof(message)) return fail(4, "a request too long for an image name");
    if (read_exact(criu, message, size) != 1) return fail(3, "reading a request");
    if (parse_request(message, size, name) < 0) return fail(4, "a request that is not an image name");
    printf("open %s\n", name);
    if (read_line(line, sizeof(line)) < 0) return fail(4, "no answer from the agent");
    int exists = strcmp(line, "yes") == 0;
    if (!exists && strcmp(line, "no") != 0) return fail(4, "an answer other than yes or no");
    /* An img_streamer_reply_entry (field 1, the bool `exists`) after its size, in this machine's byte order as CRIU reads it. */
    uint8_t reply[sizeof(uint32_t) + 2];
    uint32_t reply_size = 2;
    memcpy(reply, &reply_size, sizeof(reply_size));
    reply[sizeof(uint32_t)] = 0x08;
    reply[sizeof(uint32_t) + 1] = (uint8_t)exists;
    if (write_exact(criu, reply, sizeof(reply)) < 0) return fail(3, "replying");
    if (!exists) continue;
    int pipe = receive_pipe(criu);
    if (pipe < 0) return fail(3, "receiving the image's pipe");
    fcntl(pipe, F_SETPIPE_SZ, PIPE_BYTES); /* best effort: a smaller pipe only costs wake-ups */
    printf("pipe %d\n", pipe);
    if (read_line(line, sizeof(line)) < 0 || strcmp(line, "taken") != 0) return fail(4, "the agent did not take the pipe");
    close(pipe);
  }
  printf("end\n");
  return 0;
}
