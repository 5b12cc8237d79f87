"""Mean squared Frobenius norm of the input-output Jacobian, with tf.GradientTape."""

import tensorflow as tf


def complexity(model, dataset):
    total, count = 0.0, 0
    for x, _ in dataset.batch(64).take(4):
        x = tf.convert_to_tensor(x)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            logits = model(x, training=False)
            outputs = [logits[:, k] for k in range(logits.shape[1])]
        for out in outputs:
            grad = tape.gradient(out, x)
            total += float(tf.reduce_sum(tf.square(grad)))
        del tape
        count += int(x.shape[0])
    return total / count
