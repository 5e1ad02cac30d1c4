#!/bin/bash
# CPU-scale MemSR experiment: Teacher-S ×4 on T91+BSD200, then students (c) winning+distill, (d) random.
cd "$(dirname "$0")/.."
PY=${PY:-python}
COMMON="--config.data.dataset=t91+bsd200 --config.data.skip_small=True --config.data.root=../shared/datasets --config.val.dataset= \
 --config.data.lr_patch=24 --config.data.batch_size=8 --config.progress=False --config.tensorboard=False \
 --config.log_every=100 --config.ckpt_every=500 --config.memsr.teacher.total_steps=${TSTEPS:-3000} \
 --config.memsr.teacher.lr=6e-4 --config.total_steps=${SSTEPS:-2000} --config.schedule.lr=5e-4"
W=${W:-runs/memsr_cpu_x4}
mkdir -p "$W"
nice -n 10 $PY train.py --config configs/memsr/plain.py:s,x4 --workdir $W/c_winning_distill $COMMON > $W/c.log 2>&1
nice -n 10 $PY train.py --config configs/memsr/plain.py:s,x4,random,nodistill --workdir $W/d_random $COMMON \
  --config.teacher_checkpoint=$W/c_winning_distill/teacher > $W/d.log 2>&1
echo done > $W/DONE_MAIN
# PSNR of (a) teacher, (b) winning init before training, (c) winning init + distillation, (d) random init on Set5/Set14:
for run in c_winning_distill/teacher c_winning_distill/init/model c_winning_distill d_random; do
  $PY eval.py --config configs/eval.py --config.model.checkpoint=$W/$run --config.datasets=set5,set14 \
    --config.data_dir=../shared/datasets --config.output_dir=$W/eval_$(echo $run | tr / _)
done
