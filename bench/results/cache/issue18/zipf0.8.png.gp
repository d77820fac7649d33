set terminal pngcairo size 1400,600
set output 'bench/results/cache/issue18/zipf0.8.png'
set logscale x
set grid
set multiplot layout 1,2 title 'Miss ratio by cache size: zipf0.80'
set xlabel 'cache size (% of footprint)'
set key top right
set title 'object miss ratio'
plot 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:2 w lp lw 2 t 'Outpost', 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:4 w lp lw 2 t 'S3-FIFO', 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:6 w lp lw 2 t 'LRU', 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:8 w lp lw 2 t 'SIEVE', 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:10 w lp lw 2 t 'ARC', 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:12 w lp lw 2 t 'GDSF', 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:14 w lp lw 2 t 'W-TinyLFU'
set title 'byte miss ratio'
plot 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:3 w lp lw 2 t 'Outpost', 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:5 w lp lw 2 t 'S3-FIFO', 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:7 w lp lw 2 t 'LRU', 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:9 w lp lw 2 t 'SIEVE', 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:11 w lp lw 2 t 'ARC', 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:13 w lp lw 2 t 'GDSF', 'bench/results/cache/issue18/zipf0.8.png.dat' u 1:15 w lp lw 2 t 'W-TinyLFU'
unset multiplot
