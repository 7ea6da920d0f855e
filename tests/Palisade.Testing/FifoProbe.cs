namespace Palisade.Testing;

/// <summary>
/// A guest that makes the supervisor wait on its behalf: <c>fifo-waiters FIFO COUNT kill|keep</c> starts COUNT
/// children, one after the other, each opening FIFO for reading (which waits for a writer), and waits until each child
/// is in that open. With <c>kill</c> it kills each child there (the supervisor's wait is abandoned) and prints
/// "killed COUNT"; with <c>keep</c> it leaves them waiting, then opens FIFO for writing (which completes every waiting
/// open) and prints how many children's opens succeeded and how many failed with EAGAIN: "opened N again M".
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class FifoProbe
{
    /// <summary>The compiled probe.</summary>
    public static string Path => CProbes.Compile("fifo-waiters", Source) ?? throw new InvalidOperationException("gcc is missing");

    private const string Source = """
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <signal.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/wait.h>
        #include <unistd.h>

        /* True once the child is in a system call that is an open (it waits for the supervisor's answer or in the open). */
        static int in_open(pid_t child) {
            char path[64], line[128] = { 0 };
            snprintf(path, sizeof path, "/proc/%d/syscall", child);
            FILE *f = fopen(path, "r");
            if (!f) return 0;
            if (!fgets(line, sizeof line, f)) line[0] = 0;
            fclose(f);
            return !strncmp(line, "2 ", 2) || !strncmp(line, "257 ", 4);
        }

        int main(int argc, char **argv) {
            const char *fifo = argv[1];
            int count = atoi(argv[2]);
            int keep = !strcmp(argv[3], "keep");
            pid_t *children = calloc(count, sizeof *children);
            int results[2];
            if (pipe(results) != 0) return 3;
            for (int i = 0; i < count; i++) {
                pid_t child = fork();
                if (child == 0) {
                    int fd = open(fifo, O_RDONLY);
                    char verdict = fd >= 0 ? 'o' : errno == EAGAIN ? 'a' : 'e';
                    write(results[1], &verdict, 1);
                    _exit(0);
                }
                children[i] = child;
                /* Until the child waits in its open, or has already been answered (a refused open) and exited. */
                while (!in_open(child)) {
                    if (waitpid(child, NULL, WNOHANG) == child) { children[i] = -1; break; }
                    usleep(1000);
                }
                if (children[i] < 0) continue;
                if (!keep) {
                    kill(child, SIGKILL);
                    waitpid(child, NULL, 0);
                }
            }

            if (!keep) {
                printf("killed %d\n", count);
                return 0;
            }

            int writer = open(fifo, O_WRONLY);
            int opened = 0, again = 0;
            for (int i = 0; i < count; i++) {
                char verdict;
                if (read(results[0], &verdict, 1) != 1) break;
                opened += verdict == 'o';
                again += verdict == 'a';
            }

            if (writer >= 0) close(writer);
            for (int i = 0; i < count; i++) if (children[i] > 0) waitpid(children[i], NULL, 0);
            printf("opened %d again %d\n", opened, again);
            return 0;
        }
        """;
}
