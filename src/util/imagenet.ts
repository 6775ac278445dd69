/**
 * ImageNet's per-channel RGB mean and standard deviation in [0, 1] (torchvision's): the
 * normalisation the pipeline applies and the zoo's Caffe input layer undoes.
 */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
