// SPDX-License-Identifier: GPL-2.0
/*
 * Loop ioctls from a 32-bit process, through the kernel's compat path:
 *
 *   compat32 DEV get-status | get-status64 | set-status OFFSET FLAGS |
 *                set-status64 OFFSET FLAGS | set-fd FILE | change-fd FILE |
 *                configure FILE [BLOCK_SIZE] | set-dio N | set-block-size N |
 *                set-capacity | clr-fd | raw CMD
 *
 * The device opens read-only with RO=1 in the environment, the file with
 * RO_FILE=1.
 *
 * Prints "ok" and the fields, or the errno name, like tests/loopctl.py.
 * Built with gcc -m32 -static by the test that uses it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int report(int ret)
{
	if (ret < 0) {
		printf("%s\n", strerrorname_np(errno));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc < 3) {
		fprintf(stderr, "usage: %s DEV OP [ARGS]\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], getenv("RO") ? O_RDONLY : O_RDWR);
	if (fd < 0) {
		printf("open:%s\n", strerrorname_np(errno));
		return 0;
	}
	if (!strcmp(argv[2], "get-status")) {
		struct loop_info li;

		if (report(ioctl(fd, LOOP_GET_STATUS, &li)))
			return 0;
		printf("ok number=%d offset=%d flags=%d device=%u inode=%lu name=%s\n",
		       li.lo_number, li.lo_offset, li.lo_flags,
		       (unsigned int)li.lo_device, li.lo_inode, li.lo_name);
	} else if (!strcmp(argv[2], "get-status64")) {
		struct loop_info64 li;

		if (report(ioctl(fd, LOOP_GET_STATUS64, &li)))
			return 0;
		printf("ok number=%u offset=%llu flags=%u name=%s\n",
		       li.lo_number, (unsigned long long)li.lo_offset,
		       li.lo_flags, (char *)li.lo_file_name);
	} else if (!strcmp(argv[2], "set-status") && argc == 5) {
		struct loop_info li;

		memset(&li, 0, sizeof(li));
		li.lo_offset = atoi(argv[3]);
		li.lo_flags = atoi(argv[4]);
		if (!report(ioctl(fd, LOOP_SET_STATUS, &li)))
			printf("ok\n");
	} else if (!strcmp(argv[2], "set-status64") && argc == 5) {
		struct loop_info64 li;

		memset(&li, 0, sizeof(li));
		li.lo_offset = strtoull(argv[3], NULL, 0);
		li.lo_flags = atoi(argv[4]);
		if (!report(ioctl(fd, LOOP_SET_STATUS64, &li)))
			printf("ok\n");
	} else if ((!strcmp(argv[2], "set-fd") || !strcmp(argv[2], "change-fd") ||
		    !strcmp(argv[2], "configure")) && argc >= 4) {
		int file = open(argv[3], getenv("RO_FILE") ? O_RDONLY : O_RDWR);
		struct loop_config cfg;
		int ret;

		if (file < 0) {
			printf("open:%s\n", strerrorname_np(errno));
			return 0;
		}
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = file;
		cfg.block_size = argc > 4 ? atoi(argv[4]) : 0;
		if (!strcmp(argv[2], "configure"))
			ret = ioctl(fd, LOOP_CONFIGURE, &cfg);
		else
			ret = ioctl(fd, strcmp(argv[2], "set-fd") ? LOOP_CHANGE_FD : LOOP_SET_FD, file);
		if (!report(ret))
			printf("ok\n");
		close(file);
	} else if ((!strcmp(argv[2], "set-dio") || !strcmp(argv[2], "set-block-size")) &&
		   argc == 4) {
		unsigned long cmd = strcmp(argv[2], "set-dio") ? LOOP_SET_BLOCK_SIZE : LOOP_SET_DIRECT_IO;

		if (!report(ioctl(fd, cmd, strtoul(argv[3], NULL, 0))))
			printf("ok\n");
	} else if (!strcmp(argv[2], "set-capacity")) {
		if (!report(ioctl(fd, LOOP_SET_CAPACITY, 0)))
			printf("ok\n");
	} else if (!strcmp(argv[2], "clr-fd")) {
		if (!report(ioctl(fd, LOOP_CLR_FD, 0)))
			printf("ok\n");
	} else if (!strcmp(argv[2], "raw") && argc == 4) {
		if (!report(ioctl(fd, strtoul(argv[3], NULL, 0), 0)))
			printf("ok\n");
	} else {
		fprintf(stderr, "unknown op %s\n", argv[2]);
		return 2;
	}
	close(fd);
	return 0;
}
