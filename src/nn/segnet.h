/* segnet.h — owns the segmentation sub-network (DRAEM-style discriminative
 * U-Net, docs/method.md §5): input concat(image, reconstruction) [N,H,W,6], output
 * the anomaly map M = sigmoid(head) [N,H,W,1]. Every CBR is Conv3x3 -> BatchNorm
 * -> ReLU; names follow the reference ("seg.encoder_segment.block1.0.weight").
 * Same life cycle as the denoiser (declare, alloc, build, plan, run); every op
 * runs through the build engine's backend (backend/backend.h). */
#ifndef DD_SEGNET_H
#define DD_SEGNET_H

#include "core/arena.h"
#include "backend/backend.h"
#include "nn/layers.h"

#define DD_SEG_CBR_MAX 32

typedef struct dd_cbr {
    dd_convl conv;
    dd_bnl bn;
    int h, w;            /* spatial size (conv stride 1) */
    const float *x;      /* input */
    float *c, *y;        /* conv output; ReLU(BN(conv)) [N,h,w,cout] */
    float *dy;           /* gradient of y (training) */
} dd_cbr;

typedef struct dd_segnet {
    dd_engine *eng;      /* the engine of dd_segnet_build: every op runs on it */
    int h, w, width, in_ch;
    int n, training;
    dd_cbr cbr[DD_SEG_CBR_MAX];
    int ncbr;
    /* encoder: block b (0..5) = cbr[2b], cbr[2b+1]; pooled copies between blocks */
    float *pool[5];      /* maxpool of block b output, b = 0..4 */
    /* decoder stage s (0..4): up (bilinear) -> cbr[12+3s] -> concat -> cbr[13+3s], cbr[14+3s] */
    float *upsampled[5], *cat[5];
    dd_convl head;       /* decoder_segment.fin_out.0: width -> 1 */
    float *logits, *mask;  /* [N,H,W,1] */
    float *scratch[3];
    size_t max_act;
} dd_segnet;

int dd_segnet_check(int h, int w, int width, dd_error *err);
int dd_segnet_declare(dd_segnet *s, int h, int w, int width, int in_ch, dd_params *p,
                      const char *prefix, int group, dd_error *err);
void dd_segnet_init(dd_segnet *s, dd_params *p, dd_rng *r);
int dd_segnet_build(dd_segnet *s, dd_engine *e, int n, int training, dd_conv_algo algo, dd_error *err);
int dd_segnet_plan(dd_segnet *s, dd_arena *a, dd_error *err);
/* mask [N,H,W,1] = seg(x [N,H,W,in_ch]); BatchNorm uses batch statistics when
 * built for training (and updates the running ones), running statistics otherwise. */
int dd_segnet_forward(dd_segnet *s, dd_params *p, const float *x, dd_error *err);
/* dmask [N,H,W,1] -> parameter gradients and dx [N,H,W,in_ch] (overwritten). */
int dd_segnet_backward(dd_segnet *s, dd_params *p, const float *dmask, float *dx, dd_error *err);
void dd_segnet_free(dd_segnet *s);

#endif
