/* Mandelbrot escape counts for one tile, written into a static buffer.
 *
 * The arithmetic must match compute/examples/mandelbrot.py and kernels/mandelbrot.js
 * operation for operation: replicas are compared exactly, so build without -ffast-math and
 * with -ffp-contract=off (a fused multiply-add rounds once where the others round twice).
 * No libc: the module imports nothing and exports its memory, the buffer and tile_rows.
 */

#ifdef __wasm__
#define EXPORT(name) __attribute__((export_name(name)))
#else
#define EXPORT(name)
#endif

/* The largest tile the kernel accepts; 512 x 512 counts take 512 KiB of linear memory. */
#define MAX_PIXELS (512 * 512)

static unsigned short counts[MAX_PIXELS];

EXPORT("counts_ptr")
unsigned short *counts_ptr(void) { return counts; }

EXPORT("max_pixels")
int max_pixels(void) { return MAX_PIXELS; }

/* Rows [row0, row1) of a tile that is w pixels wide and starts at pixel (x, y) of the image.
 * Pixel (i, j) of the image is the point re_min + i * dx + (im_max - j * dy) i. */
EXPORT("tile_rows")
void tile_rows(double re_min, double dx, double im_max, double dy, int x, int y, int w,
               int row0, int row1, int max_iter) {
    for (int row = row0; row < row1; row++) {
        double ci = im_max - (double)(y + row) * dy;
        unsigned short *out = counts + row * w;
        for (int col = 0; col < w; col++) {
            double cr = re_min + (double)(x + col) * dx;
            double zr = 0.0, zi = 0.0;
            int n = 0;
            while (n < max_iter) {
                double zr2 = zr * zr;
                double zi2 = zi * zi;
                if (zr2 + zi2 > 4.0) break;
                zi = 2.0 * zr * zi + ci;
                zr = zr2 - zi2 + cr;
                n++;
            }
            out[col] = (unsigned short)n;
        }
    }
}
