// SPDX-License-Identifier: GPL-2.0
/*
 * procpoller: the earlyoom-style peer. Every INTERVAL ms it walks /proc,
 * reads each process's status for its name and thread count and, for a
 * target (name contains SUBSTR), its io (rchar, syscw) and the entries of
 * its fd directory, and sends SIGKILL when one reaches its limit. It sees
 * only what /proc shows at the moment it looks: Threads: is the current
 * count, not the number ever created, and rand() and TCP segments are not
 * in /proc at all.
 *
 * procpoller [-i MS] [-n SUBSTR] [-f FDS] [-t THREADS] [-w SYSCW] [-r RCHAR]
 * Prints "procpoller: ready" on stderr, then one line per kill on stdout:
 *   kill PID NAME RULE VALUE LIMIT T_NS        (T_NS: CLOCK_MONOTONIC)
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned long long lim_fds = 100, lim_threads = 100, lim_syscw = 100,
			  lim_rchar = 10 << 20;
static const char *substr = "oomp";

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static ssize_t slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

static unsigned long long field(const char *buf, const char *key)
{
	const char *s = strstr(buf, key);

	return s ? strtoull(s + strlen(key), NULL, 10) : 0;
}

static unsigned long long count_fds(int pid)
{
	char path[64];
	unsigned long long n = 0;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void kill_it(int pid, const char *name, const char *rule,
		    unsigned long long value, unsigned long long limit)
{
	if (kill(pid, SIGKILL) == 0) {
		printf("kill %d %s %s %llu %llu %llu\n", pid, name, rule, value,
		       limit, (unsigned long long)now_ns());
		fflush(stdout);
	}
}

static void scan(void)
{
	char path[64], buf[4096], name[32];
	struct dirent *de;
	DIR *proc;

	proc = opendir("/proc");
	if (!proc)
		return;
	while ((de = readdir(proc))) {
		unsigned long long v;
		char *s, *e;
		int pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = atoi(de->d_name);
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
		if (slurp(path, buf, sizeof(buf)) <= 0 || strncmp(buf, "Name:\t", 6))
			continue;
		s = buf + 6;
		e = strchr(s, '\n');
		if (!e || e - s >= (long)sizeof(name))
			continue;
		memcpy(name, s, e - s);
		name[e - s] = 0;
		if (!strstr(name, substr))
			continue;
		v = field(buf, "\nThreads:\t");
		if (v >= lim_threads) {
			kill_it(pid, name, "threads", v, lim_threads);
			continue;
		}
		v = count_fds(pid);
		if (v >= lim_fds) {
			kill_it(pid, name, "fds", v, lim_fds);
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/io", pid);
		if (slurp(path, buf, sizeof(buf)) <= 0)
			continue;
		v = field(buf, "syscw: ");
		if (v >= lim_syscw) {
			kill_it(pid, name, "syscw", v, lim_syscw);
			continue;
		}
		v = field(buf, "rchar: ");
		if (v >= lim_rchar)
			kill_it(pid, name, "rchar", v, lim_rchar);
	}
	closedir(proc);
}

int main(int argc, char **argv)
{
	long interval_ms = 100;
	struct timespec next;
	int opt;

	while ((opt = getopt(argc, argv, "i:n:f:t:w:r:")) != -1) {
		switch (opt) {
		case 'i': interval_ms = atol(optarg); break;
		case 'n': substr = optarg; break;
		case 'f': lim_fds = strtoull(optarg, NULL, 0); break;
		case 't': lim_threads = strtoull(optarg, NULL, 0); break;
		case 'w': lim_syscw = strtoull(optarg, NULL, 0); break;
		case 'r': lim_rchar = strtoull(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: %s [-i MS] [-n SUBSTR] [-f FDS] [-t THREADS] [-w SYSCW] [-r RCHAR]\n", argv[0]);
			return 2;
		}
	}
	if (interval_ms <= 0)
		return 2;
	fprintf(stderr, "procpoller: ready\n");
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		scan();
		next.tv_nsec += interval_ms * 1000000L;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
}
