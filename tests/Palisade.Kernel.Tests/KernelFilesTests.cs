using Palisade.Kernel.Hosting;
using Palisade.Kernel.Io;

namespace Palisade.Kernel.Tests;

/// <summary>The kernel's own files: what the host refuses to let a guest change, known by identity.</summary>
public sealed class KernelFilesTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("palisade-kernel-files-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public void The_home_its_folders_and_its_files_are_the_kernels()
    {
        Directory.CreateDirectory(Path.Combine(_home, "trust"));
        File.WriteAllText(Path.Combine(_home, "trust", "dev.pub"), "key");
        var files = new KernelFiles();

        files.AddHome(_home);

        Assert.Equal(KernelFileKind.Folder, files.KindOf(TestFiles.IdentityOf(_home)));
        Assert.Equal(KernelFileKind.Folder, files.KindOf(TestFiles.IdentityOf(Path.Combine(_home, "trust"))));
        Assert.Equal(KernelFileKind.File, files.KindOf(TestFiles.IdentityOf(Path.Combine(_home, "trust", "dev.pub"))));
    }

    [Fact]
    public void The_folders_on_the_way_to_the_home_are_its_ancestors_and_their_other_entries_are_not_the_kernels()
    {
        var files = new KernelFiles();

        files.AddHome(_home);

        Assert.Equal(KernelFileKind.Ancestor, files.KindOf(TestFiles.IdentityOf(Path.GetDirectoryName(_home)!)));
        string neighbour = Directory.CreateTempSubdirectory("palisade-neighbour-").FullName;
        try
        {
            Assert.Equal(KernelFileKind.None, files.KindOf(TestFiles.IdentityOf(neighbour)));
        }
        finally
        {
            Directory.Delete(neighbour);
        }
    }

    [Fact]
    public void A_hard_link_to_a_kernel_file_is_the_same_kernel_file()
    {
        string key = Path.Combine(_home, "key.pub");
        File.WriteAllText(key, "key");
        var files = new KernelFiles();
        files.AddHome(_home);
        string link = Path.Combine(Path.GetTempPath(), "palisade-link-" + Guid.NewGuid().ToString("N"));
        Assert.Equal(0, ProcessRunner.Run("ln", [key, link]).ExitCode);
        try
        {
            Assert.Equal(KernelFileKind.File, files.KindOf(TestFiles.IdentityOf(link)));
        }
        finally
        {
            File.Delete(link);
        }
    }

    [Fact]
    public void A_kernel_reached_through_its_host_surface_names_its_home_as_a_folder()
    {
        using var k = new TestKernel();

        Assert.Equal(KernelFileKind.Folder, k.Host.KernelFileKindOf(TestFiles.IdentityOf(k.Home)));
    }
}
