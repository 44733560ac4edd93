/* mpi_launch.c: an MPI program that does nothing, so that mpirun's launch plus MPI's start-up can be subtracted from hpool's MPI rows. */
#include <mpi.h>

int main(int argc, char **argv)
{
    /* The thread level hpool_mpi_init() asks for, since it may cost more to set up. */
    int provided;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
        return 1;
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}
