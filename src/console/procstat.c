/* The process_* families of /metrics, as Prometheus' client libraries export them (so the usual dashboards and
 * alerts work unchanged): CPU seconds, resident and virtual memory, open and allowed file descriptors, and the start
 * time, read from /proc/self at scrape time. On a system without /proc the families are left out rather than
 * reported as zero. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "console/internal.h"

static void one(struct sl_buf *out, const char *name, const char *type, const char *help, double v)
{
	sl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

/* The system's boot time (btime in /proc/stat), for the start time: /proc/self/stat gives it in ticks since boot. */
static int64_t boot_time(void)
{
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return -1;
	char line[256];
	int64_t bt = -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "btime ", 6)) {
			bt = strtoll(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return bt;
}

void sl_con_process_metrics(struct sl_buf *out)
{
	FILE *f = fopen("/proc/self/stat", "r");
	if (!f)
		return;
	char buf[2048];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	/* The command name (field 2) may hold spaces and parentheses: fields are counted from the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return;
	unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
	long long rss = 0;
	/* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
	 * cutime cstime priority nice threads itrealvalue starttime(22) vsize(23) rss(24) */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
		   &utime, &stime, &start, &vsize, &rss) != 5)
		return;
	double tick = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
	one(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
	    (double)(utime + stime) / tick);
	one(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", (double)rss * page);
	one(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", (double)vsize);
	int64_t bt = boot_time();
	if (bt > 0)
		one(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
		    (double)bt + (double)start / tick);
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		long fds = 0;
		for (struct dirent *e; (e = readdir(d));)
			if (e->d_name[0] != '.')
				fds++;
		closedir(d);
		one(out, "process_open_fds", "gauge", "Number of open file descriptors.", (double)(fds - 1)); /* less the DIR's */
	}
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl))
		one(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
		    rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
}
